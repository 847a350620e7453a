"""PyTorch vs ONNX Runtime (fp32 and int8) real-time factor on CPU for the same VITS checkpoint, side by side.

Default model: a full-size VITS (coqui defaults, Bangla character set) with random weights, saved as a bundle
first so all backends load the same file; ``--bundle`` measures a published bundle instead
(``<workspace>/vits/model/step-N`` with model.pth, config.json, model.onnx; model.int8.onnx is made when missing).
Backends, in interleaved rounds (one pass over the five test sentences each, order rotated every round):
``pytorch`` (weight norm folded, as the ONNX export does), ``pytorch-weightnorm`` (as coqui loads it: the weight
norm recomputed every call; with --weightnorm-row), ``onnxruntime`` (fp32) and ``onnxruntime-int8`` (decoder
convolutions int8, ``nbhelpers.vits.quantize``). All use the same thread count. Timing goes through the suite's
harness with deterministic noise so all produce the same audio length; fp32 ONNX is checked against PyTorch
sample by sample, int8 against fp32 ONNX spectrally. Target: ONNX Runtime >= 1.5x faster than PyTorch.
``--piper`` adds the real-weights check of the int8 recipe (Piper en_US-joe-medium: Whisper CER fp32 vs int8).

  PYTHONPATH=. .venv/bin/python benchmarks/vits_onnx.py [--bundle DIR] [--threads 2] [--rounds 3] [--piper]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def make_full_bundle(folder: Path, seed: int = 0) -> Path:
    """A random-weight full-size Bangla VITS bundle (model.pth + config.json + model.onnx) in ``folder``."""
    import torch
    from TTS.tts.models.vits import Vits

    from nbhelpers.profiles import load_profile
    from nbhelpers.vits.config import build_config, save_config
    from nbhelpers.vits.export import export_onnx, inference_config

    torch.manual_seed(seed)
    params = load_profile("vits", "kaggle-t4", {"start": "full"})
    config = inference_config(build_config(params, folder / "run"))
    model = Vits(config).eval()
    torch.save({"model": model.state_dict(), "step": 0}, folder / "model.pth")
    save_config(config, folder / "config.json")
    export_onnx(model, folder / "model.onnx")
    return folder


def piper_rows(threads: int, rounds: int, tmp: Path) -> list[str]:
    """Markdown lines: the int8 recipe on Piper en_US-joe-medium (real weights): CER, spectral distance, RTF."""
    from nbhelpers.bench.run import ENGLISH_TEXTS
    from nbhelpers.measure.harness import measure_synthesis
    from nbhelpers.vits.piper_int8 import PiperOnnx, check_piper_int8, piper_paths, quantize_piper

    fp32 = PiperOnnx(piper_paths()[0], threads)
    int8 = PiperOnnx(quantize_piper(tmp / "piper.int8.onnx"), threads)
    check = check_piper_int8(fp32, int8, ENGLISH_TEXTS)
    rtf: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for name, voice, dtype in (("fp32", fp32, "float32"), ("int8", int8, "int8")):
            rec = measure_synthesis("piper-joe", f"onnxruntime-{name}", lambda t, v=voice: (
                v.synthesize(t, deterministic=True), v.sample_rate), list(ENGLISH_TEXTS), dtype=dtype, warmup=1,
                repeats=1, threads=threads, language="en", progress=False)
            rtf[name].append(rec["rtf"])
    m = check["mean"]
    return ["", f"Piper en_US-joe-medium (real weights), same int8 recipe, {len(ENGLISH_TEXTS)} English sentences, "
            "Whisper base, deterministic noise:",
            "| model | best-round RTF | RTF per round | Whisper CER (mean) |", "|---|---:|---|---:|",
            f"| fp32 | {min(rtf['fp32']):.3f} | {', '.join(f'{x:.3f}' for x in rtf['fp32'])} | {m['cer_fp32']:.3f} |",
            f"| int8 | {min(rtf['int8']):.3f} | {', '.join(f'{x:.3f}' for x in rtf['int8'])} | {m['cer_int8']:.3f} |",
            f"int8 speed-up {min(rtf['fp32']) / min(rtf['int8']):.2f}x; int8 vs fp32 audio: spectral convergence "
            f"{m['spectral_convergence']:.3f}, log-spectral distance {m['log_spectral_distance_db']:.2f} dB"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: a random full-size VITS)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every backend (0: torch default)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (one pass over the sentences per "
                        "backend each), so load changes on a shared machine hit all backends alike")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--weightnorm-row", action="store_true", help="also time PyTorch with coqui's weight-norm "
                        "parametrizations left in place")
    parser.add_argument("--piper", action="store_true", help="also run the int8 recipe on Piper en_US-joe-medium "
                        "(real weights) and compare Whisper CER with fp32")
    parser.add_argument("--records", type=Path, help="append the tts-bench/1 records to this JSONL file")
    parser.add_argument("--passive", action="store_true", help="no busy-waiting threads in any backend "
                        "(OMP_WAIT_POLICY=PASSIVE, ORT allow_spinning=0): fairer on a shared, overloaded CPU")
    args = parser.parse_args(argv)
    if args.passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when torch's OpenMP starts: set before importing torch

    import torch

    from nbhelpers.measure.harness import append_record
    from nbhelpers.vits.config import TEST_SENTENCES, load_coqui_config
    from nbhelpers.vits.export import (
        ONNX_FILES,
        Backend,
        OnnxVits,
        compare_backends,
        fold_weight_norm,
        load_model,
        onnx_file,
        synthesize,
        time_backends,
    )
    from nbhelpers.vits.quantize import compare_int8, quantize_vits

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or make_full_bundle(Path(tmp))
        config = load_coqui_config(bundle / "config.json")
        fp32_path = onnx_file(bundle, "fp32")
        int8_path = bundle / ONNX_FILES["int8"]
        if not int8_path.is_file():
            int8_path = quantize_vits(fp32_path, Path(tmp) / ONNX_FILES["int8"], config)
        model = fold_weight_norm(load_model(bundle / "model.pth", bundle / "config.json").cpu())
        onnx = OnnxVits(fp32_path, config, threads=threads, spinning=not args.passive)
        int8 = OnnxVits(int8_path, config, threads=threads, spinning=not args.passive)
        check = compare_backends(model, onnx, tolerance=1e-3)
        check8 = compare_int8(onnx, int8, TEST_SENTENCES, max_convergence=0.25)
        backends = {"pytorch": Backend(lambda t, **kw: synthesize(model, t, **kw), model, [bundle / "model.pth"],
                                       threads=threads),
                    "onnxruntime": Backend(onnx.synthesize, fp32_path, [fp32_path], threads=threads),
                    "onnxruntime-int8": Backend(int8.synthesize, int8_path, [int8_path], "int8", threads)}
        if args.weightnorm_row:
            wn_model = load_model(bundle / "model.pth", bundle / "config.json").cpu()
            backends["pytorch-weightnorm"] = Backend(lambda t, **kw: synthesize(wn_model, t, **kw), wn_model,
                                                     [bundle / "model.pth"], threads=threads)
        names = list(backends)
        rounds = []
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]  # rotate: no backend always runs first
            notes = ("random-weight full-size VITS" if args.bundle is None else f"bundle {args.bundle}") + \
                f"; {threads} threads; deterministic noise; round {i + 1}/{args.rounds}" + \
                ("; passive thread waiting" if args.passive else "")
            rounds.append(time_backends({n: backends[n] for n in order}, repeats=1, warmup=args.warmup,
                                        notes=notes))
        piper = piper_rows(threads, args.rounds, Path(tmp)) if args.piper else []
    load_after = os.getloadavg()
    if args.records:
        for records in rounds:
            for rec in records.values():
                append_record(rec, args.records)
    ratios = {n: [r["pytorch"]["rtf"] / r[n]["rtf"] for r in rounds] for n in names}
    best = {n: min((r[n] for r in rounds), key=lambda rec: rec["rtf"]) for n in names}
    pt = best["pytorch"]
    print(f"\nmodel: {'random full-size VITS' if args.bundle is None else args.bundle} "
          f"({pt['params'] / 1e6:.1f} M generator parameters), {len(TEST_SENTENCES)} Bangla sentences "
          f"({pt['audio_s']:.1f} s audio), {args.rounds} interleaved rounds, {threads} threads"
          f"{', passive waiting' if args.passive else ''}, CPU: {pt['cpu']}; load average (1/5/15 min) "
          f"before {'/'.join(f'{x:.2f}' for x in load_before)}, after {'/'.join(f'{x:.2f}' for x in load_after)}")
    print("| backend | best-round RTF | RTF per round | speed-up vs PyTorch (median of rounds) | "
          "median latency s (best round) | peak RSS MiB | size MiB |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for n in names:
        r = best[n]
        per_round = ", ".join(f"{rd[n]['rtf']:.3f}" for rd in rounds)
        print(f"| {n} | {r['rtf']:.3f} | {per_round} | "
              f"{np.median(ratios[n]):.2f}x | {r['latency_s_median']:.3f} | {r['peak_rss_mib']:.0f} | "
              f"{r['disk_mib']:.0f} |")
    for n in ("onnxruntime", "onnxruntime-int8"):
        speedup = float(np.median(ratios[n]))
        print(f"{n} speed-up per round: {', '.join(f'{x:.2f}x' for x in ratios[n])}; median {speedup:.2f}x "
              f"(target >= 1.5x: {'met' if speedup >= 1.5 else 'NOT met'})")
    print(f"fp32 ONNX vs PyTorch: max |diff| = {check['max_abs_diff']:.2e}, lengths match: {check['lengths_match']}; "
          f"int8 vs fp32 ONNX: spectral convergence max {check8.get('spectral_convergence_max', float('nan')):.3f}, "
          f"log-spectral distance {check8.get('log_spectral_distance_db_mean', float('nan')):.2f} dB, "
          f"lengths match: {check8['lengths_match']} (random weights: a weak quality check, see --piper)")
    print("\n".join(piper))
    print(json.dumps({"speedups": ratios, "check": check, "int8_check": check8}, default=str))
    return 0 if check["ok"] and check8["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
