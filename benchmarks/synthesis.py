"""Parler synthesis fast paths, side by side in one run on one device: eager vs each path of
``nbhelpers.parler.synth`` and their combination, per model. Random weights: speed and memory only, never quality.

Models (``--models``):
  tiny      stage 02's smoke model (0.4 M parameters)
  student   the kaggle-t4 student's shape of Indic Parler-TTS (decoder 5 x 1024, T5 6 x 1024, DAC 44.1 kHz, 9 codebooks)
  teacher   Indic Parler-TTS's shape (decoder 24 x 1024, T5 24 x 1024); its eager row is the "eager teacher"

Rows per model: eager attention without presets (the library default before this API), SDPA, SDPA + presets,
SDPA + presets + int8 decoder (CPU), presets + int8 (CPU) or fp16 (GPU) at batch 4 and 16, streaming (time to first
audio). Every row generates exactly --frames audio frames per text (equal work), greedy, after one warm-up call;
the median of --repeats timed passes is reported. Outputs are compared with the eager row: "exact" when every
sample is identical, else the spectral convergence and log-spectral distance (dB) of the int8 audio.

  PYTHONPATH=. .venv-parler/bin/python benchmarks/synthesis.py --models tiny,student --frames 86 --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from distill import DESCRIPTION, indic_sized_teacher  # noqa: E402

from nbhelpers.parler.model import build_tiny  # noqa: E402
from nbhelpers.parler.synth import ParlerSynth, SynthSettings  # noqa: E402
from nbhelpers.vits.quantize import spectral_distance  # noqa: E402

TEXTS = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ.", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ.",
         "ನಾನು ಪ್ರತಿದಿನ ಬೆಳಿಗ್ಗೆ ಪುಸ್ತಕ ಓದುತ್ತೇನೆ."]


def build(name: str, attention: str):
    if name == "tiny":
        return build_tiny(0, attention=attention)
    layers = {"student": (5, 6), "teacher": (24, 24)}[name]
    return indic_sized_teacher(0, decoder_layers=layers[0], text_layers=layers[1], attention=attention)


def rows_for(device: str) -> list[tuple[str, str, SynthSettings, int]]:
    """(row name, attention, settings, number of texts) in measuring order."""
    cpu = device == "cpu"
    fast = SynthSettings(presets=True, int8_decoder=cpu, batch_size=1)
    return [("eager", "eager", SynthSettings(presets=False), 4),
            ("sdpa", "sdpa", SynthSettings(presets=False), 4),
            ("sdpa+presets", "sdpa", SynthSettings(presets=True), 4),
            ("sdpa+presets+" + ("int8" if cpu else "fp16"), "sdpa", fast, 4),
            ("all, batch 4", "sdpa", SynthSettings(presets=True, int8_decoder=cpu, batch_size=4), 4),
            ("all, batch 16", "sdpa", SynthSettings(presets=True, int8_decoder=cpu, batch_size=16), 16)]


def measure(bundle, settings: SynthSettings, texts: list[str], frames: int, repeats: int, device: str
            ) -> dict[str, Any]:
    synth = ParlerSynth(bundle, settings, device=device)
    synth.synthesize(texts[:1], DESCRIPTION, frames=frames, do_sample=False)  # warm-up (and compile)
    times, audios = [], []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        audios = synth.synthesize(texts, DESCRIPTION, frames=frames, do_sample=False)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    elapsed = statistics.median(times)
    audio_s = sum(len(a) for a in audios) / bundle.sampling_rate
    return {"seconds": elapsed, "per_utterance_s": elapsed / len(texts), "rtf": elapsed / audio_s,
            "throughput_audio_s_per_s": audio_s / elapsed, "audios": audios, "report": synth.report()}


def time_to_first_audio(bundle, frames: int, device: str, chunk_seconds: float) -> float:
    synth = ParlerSynth(bundle, SynthSettings(presets=True), device=device)
    list(synth.stream(TEXTS[0], DESCRIPTION, max_seconds=frames / bundle.frame_rate, chunk_seconds=chunk_seconds))
    started, first = time.perf_counter(), float("nan")
    for _ in synth.stream(TEXTS[0], DESCRIPTION, max_seconds=frames / bundle.frame_rate, chunk_seconds=chunk_seconds):
        if first != first:  # NaN: this is the first chunk
            first = time.perf_counter() - started
    return first


def compare(ref: list[np.ndarray], hyp: list[np.ndarray]) -> str:
    if all(np.array_equal(a, b) for a, b in zip(ref, hyp, strict=False)):
        return "exact"
    d = [spectral_distance(a, b) for a, b in zip(ref, hyp, strict=False) if a.shape == b.shape]
    if not d:
        return "lengths differ"
    return (f"SC {np.mean([x['spectral_convergence'] for x in d]):.3f}, "
            f"LSD {np.mean([x['log_spectral_distance_db'] for x in d]):.2f} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,student")
    ap.add_argument("--frames", type=int, default=86)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--chunk-seconds", type=float, default=0.25)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {args.frames} frames per text, greedy; median of "
          f"{args.repeats}\n")
    rows = []
    for model in args.models.split(","):
        eager_audio, eager_s = None, None
        for row, attention, settings, n in rows_for(device):
            texts = (TEXTS * 4)[:n]
            result = measure(build(model, attention), settings, texts, args.frames, args.repeats, device)
            ref = eager_audio if n == 4 else None
            if row == "eager":
                eager_audio, eager_s = result["audios"], result["per_utterance_s"]
            rows.append({"model": model, "row": row, "texts": n,
                         "per_utterance_s": round(result["per_utterance_s"], 4), "rtf": round(result["rtf"], 3),
                         "throughput": round(result["throughput_audio_s_per_s"], 3),
                         "speedup_vs_eager": round(eager_s / result["per_utterance_s"], 2),
                         "vs_eager": compare(ref, result["audios"]) if ref is not None else "-",
                         "fallbacks": result["report"]["fallbacks"]})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
        ttfa = time_to_first_audio(build(model, "sdpa"), args.frames, device, args.chunk_seconds)
        rows.append({"model": model, "row": f"streaming, {args.chunk_seconds} s chunks", "ttfa_s": round(ttfa, 4)})
        print(json.dumps(rows[-1]), flush=True)
        dropped = ParlerSynth(build(model, "sdpa"), SynthSettings(drop_text_encoder=True), device=device)
        dropped.preload([DESCRIPTION])
        rows.append({"model": model, "row": "presets, description encoder freed", **dropped.freed})
        print(json.dumps(rows[-1]), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the process: {peak:.0f} MiB\n")
    print("| model | path | texts | s / utterance | RTF | audio-s / s | speed-up vs eager | output vs eager |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "ttfa_s" in r:
            print(f"| {r['model']} | {r['row']} | 1 | time to first audio {r['ttfa_s']} s | | | | |")
        elif "parameters" in r:
            print(f"| {r['model']} | {r['row']} | | {r['parameters'] / 1e6:.1f} M parameters, "
                  f"{r['bytes'] / 2**20:.0f} MiB no longer needed | | | | |")
        else:
            print(f"| {r['model']} | {r['row']} | {r['texts']} | {r['per_utterance_s']} | {r['rtf']} | "
                  f"{r['throughput']} | {r['speedup_vs_eager']}x | {r['vs_eager']} |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
