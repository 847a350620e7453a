"""Synthesis fast paths, side by side in one run on one device, per model family (``--family``). Random weights:
speed and memory only, never quality.

``--family parler`` (parler stack): eager vs each path of ``nbhelpers.parler.synth`` and their combination.
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

``--family vits`` (main stack): ``nbhelpers.vits.synth.VitsSynth`` on a full-size random-weight Bangla VITS bundle
(benchmarks/vits_onnx.py's), backends torch (weight norm folded), onnx (fp32) and onnx-int8, each at batch 1, 4 and
16 over the same 16 sentences with deterministic noise (every row speaks the same audio length); throughput in
audio seconds per second, median of --repeats interleaved rounds (one pass per batch size each, order rotated)
after a warm-up batch of each size.

  PYTHONPATH=. .venv/bin/python benchmarks/synthesis.py --family vits --threads 2 --repeats 2

``--family pocket`` (main stack): ``nbhelpers.pocket.stream.PocketStream`` on the smoke profile's tiny random model
(models-offline.md), end-of-speech disabled so each sentence runs to the package's length limit: time to first audio
chunk vs the whole utterance, one sentence and three.

  PYTHONPATH=. .venv/bin/python benchmarks/synthesis.py --family pocket --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

TEXTS = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ.", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ.",
         "ನಾನು ಪ್ರತಿದಿನ ಬೆಳಿಗ್ಗೆ ಪುಸ್ತಕ ಓದುತ್ತೇನೆ."]


def build(name: str, attention: str):
    from distill import indic_sized_teacher

    from nbhelpers.parler.model import build_tiny

    if name == "tiny":
        return build_tiny(0, attention=attention)
    layers = {"student": (5, 6), "teacher": (24, 24)}[name]
    return indic_sized_teacher(0, decoder_layers=layers[0], text_layers=layers[1], attention=attention)


def rows_for(device: str) -> list[tuple[str, str, Any, int]]:
    """(row name, attention, SynthSettings, number of texts) in measuring order."""
    from nbhelpers.parler.synth import SynthSettings

    cpu = device == "cpu"
    fast = SynthSettings(presets=True, int8_decoder=cpu, batch_size=1)
    return [("eager", "eager", SynthSettings(presets=False), 4),
            ("sdpa", "sdpa", SynthSettings(presets=False), 4),
            ("sdpa+presets", "sdpa", SynthSettings(presets=True), 4),
            ("sdpa+presets+" + ("int8" if cpu else "fp16"), "sdpa", fast, 4),
            ("all, batch 4", "sdpa", SynthSettings(presets=True, int8_decoder=cpu, batch_size=4), 4),
            ("all, batch 16", "sdpa", SynthSettings(presets=True, int8_decoder=cpu, batch_size=16), 16)]


def measure(bundle, settings: Any, texts: list[str], frames: int, repeats: int, device: str) -> dict[str, Any]:
    from distill import DESCRIPTION

    from nbhelpers.parler.synth import ParlerSynth

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
    from distill import DESCRIPTION

    from nbhelpers.parler.synth import ParlerSynth, SynthSettings

    synth = ParlerSynth(bundle, SynthSettings(presets=True), device=device)
    list(synth.stream(TEXTS[0], DESCRIPTION, max_seconds=frames / bundle.frame_rate, chunk_seconds=chunk_seconds))
    started, first = time.perf_counter(), float("nan")
    for _ in synth.stream(TEXTS[0], DESCRIPTION, max_seconds=frames / bundle.frame_rate, chunk_seconds=chunk_seconds):
        if first != first:  # NaN: this is the first chunk
            first = time.perf_counter() - started
    return first


def compare(ref: list[np.ndarray], hyp: list[np.ndarray]) -> str:
    from nbhelpers.vits.quantize import spectral_distance

    if all(np.array_equal(a, b) for a, b in zip(ref, hyp, strict=False)):
        return "exact"
    d = [spectral_distance(a, b) for a, b in zip(ref, hyp, strict=False) if a.shape == b.shape]
    if not d:
        return "lengths differ"
    return (f"SC {np.mean([x['spectral_convergence'] for x in d]):.3f}, "
            f"LSD {np.mean([x['log_spectral_distance_db'] for x in d]):.2f} dB")


def parler_main(args: argparse.Namespace, device: str, name: str) -> None:
    """The Parler rows (see the module docstring)."""
    from distill import DESCRIPTION

    from nbhelpers.parler.synth import ParlerSynth, SynthSettings

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


VITS_BATCHES = (1, 4, 16)


def vits_main(args: argparse.Namespace, device: str, name: str) -> None:
    """The VITS rows: each backend at batch 1, 4 and 16 over the same 16 sentences (see the module docstring)."""
    from vits_onnx import make_full_bundle

    from nbhelpers.vits.config import TEST_SENTENCES
    from nbhelpers.vits.export import quantize_bundle
    from nbhelpers.vits.quantize import CALIBRATION_SENTENCES
    from nbhelpers.vits.synth import VitsSynth

    texts = (list(TEST_SENTENCES) + list(CALIBRATION_SENTENCES)) * 2
    texts = texts[:16]
    tmp = tempfile.TemporaryDirectory()
    bundle = args.bundle
    if bundle is None:
        (Path(tmp.name) / "bundle").mkdir()
        bundle = make_full_bundle(Path(tmp.name) / "bundle")
    backends = args.vits_backends.split(",")
    if "onnx-int8" in backends and not (bundle / "model.int8.onnx").is_file():
        quantize_bundle(bundle)
    print(f"device: {name}; torch {torch.__version__}; bundle {bundle}; {len(texts)} Bangla sentences, deterministic "
          f"noise; median of {args.repeats}\n")
    rows = []
    for backend in backends:
        synth = VitsSynth.from_bundle(bundle, backend, threads=args.threads or None)
        times: dict[int, list[float]] = {size: [] for size in VITS_BATCHES}
        lengths: dict[int, list[int]] = {}
        for size in VITS_BATCHES:  # warm-up: one batch of each size
            synth.batch_size = size
            synth.synthesize(texts[:size], deterministic=True)
        for rnd in range(args.repeats):  # interleaved rounds, order rotated: a load change hits every size alike
            order = VITS_BATCHES[rnd % len(VITS_BATCHES):] + VITS_BATCHES[:rnd % len(VITS_BATCHES)]
            for size in order:
                synth.batch_size = size
                started = time.perf_counter()
                audios = synth.synthesize(texts, deterministic=True)
                times[size].append(time.perf_counter() - started)
                lengths[size] = [len(a) for a in audios]
        audio_s = sum(lengths[1]) / synth.sample_rate
        base = audio_s / statistics.median(times[1])
        for size in VITS_BATCHES:
            elapsed = statistics.median(times[size])
            rows.append({"backend": backend, "batch": size, "texts": len(texts), "seconds": round(elapsed, 3),
                         "per_round": [round(t, 2) for t in times[size]], "rtf": round(elapsed / audio_s, 4),
                         "throughput": round(audio_s / elapsed, 3),
                         "speedup_vs_batch_1": round(audio_s / elapsed / base, 2),
                         "same_lengths_as_batch_1": lengths[size] == lengths[1], "audio_s": round(audio_s, 2)})
            print(json.dumps(rows[-1]), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the process: {peak:.0f} MiB\n")
    print("| backend | batch | texts | s per pass (median) | s per round | RTF | audio-s / s | vs batch 1 | same clip "
          "lengths as batch 1 |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['batch']} | {r['texts']} | {r['seconds']} | {', '.join(map(str, r['per_round']))} "
              f"| {r['rtf']} | {r['throughput']} | {r['speedup_vs_batch_1']}x | "
              f"{'yes' if r['same_lengths_as_batch_1'] else 'no'} |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1, ensure_ascii=False))
    tmp.cleanup()


POCKET_TEXTS = ["ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ.", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ.", "ನಾನು ಪ್ರತಿದಿನ ಬೆಳಿಗ್ಗೆ ಪುಸ್ತಕ ಓದುತ್ತೇನೆ."]


def pocket_main(args: argparse.Namespace, device: str, name: str) -> None:
    """The Pocket rows: time to first audio chunk vs the whole utterance, one sentence and three."""
    from nbhelpers.paths import Workspace
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.stream import PocketStream
    from nbhelpers.profiles import load_profile

    cfg = load_profile("pocket", "smoke")
    tmp = tempfile.TemporaryDirectory()
    prep = prepare(cfg, workspace=Workspace(args.workspace or tmp.name), dataset=args.dataset, run="stream-bench")
    # random weights: end-of-speech never fires, so every sentence runs to the package's length limit for its text
    # (equal work in every run, the speaking length of a real voice)
    prep.tts_model.eos_threshold = float("inf")
    speaker = PocketStream(prep.tts_model, prep.voice_prompt)
    print(f"device: {name}; torch {torch.__version__}; smoke profile's tiny random Pocket model; median of "
          f"{args.repeats}\n")
    rows = []
    for label, text in (("1 sentence", POCKET_TEXTS[0]), ("3 sentences", " ".join(POCKET_TEXTS))):
        list(speaker.stream(text))  # warm-up
        runs = []
        for _ in range(args.repeats):
            chunks = list(speaker.stream(text))
            runs.append((speaker.timing.first_audio_s, speaker.timing.total_s, speaker.timing.audio_s, len(chunks)))
        first, total = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        rows.append({"text": label, "chunks": runs[-1][3], "audio_s": round(runs[-1][2], 2),
                     "first_audio_s": round(first, 3), "whole_s": round(total, 3),
                     "first_audio_share": round(first / total, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| text | chunks | audio s | time to first audio s | whole utterance s | first audio at |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['text']} | {r['chunks']} | {r['audio_s']} | {r['first_audio_s']} | {r['whole_s']} | "
              f"{r['first_audio_share']:.0%} of the whole |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1, ensure_ascii=False))
    tmp.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=("parler", "vits", "pocket"), default="parler")
    ap.add_argument("--models", default="tiny,student", help="parler: which models")
    ap.add_argument("--frames", type=int, default=86, help="parler: audio frames per text")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--chunk-seconds", type=float, default=0.25, help="parler: streaming chunk length")
    ap.add_argument("--bundle", type=Path, help="vits: a published bundle (default: a full-size random one)")
    ap.add_argument("--vits-backends", default="torch,onnx,onnx-int8")
    ap.add_argument("--dataset", default="kn_smoke", help="pocket: a prepared dataset name or folder with train.json")
    ap.add_argument("--workspace", help="pocket: the workspace holding --dataset (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    {"parler": parler_main, "vits": vits_main, "pocket": pocket_main}[args.family](args, device, name)


if __name__ == "__main__":
    main()
