"""PyTorch vs ONNX Runtime real-time factor on CPU for the same VITS checkpoint, measured side by side.

Default model: a full-size VITS (coqui defaults, Bangla character set) with random weights, saved as a bundle
first so both backends load the same file; ``--bundle`` measures a published bundle instead
(``<workspace>/vits/model/step-N`` with model.pth, config.json, model.onnx). Timing goes through the suite's
harness (``nbhelpers.bench.harness.measure_synthesis``) with deterministic noise so both backends produce the
same audio; the ONNX output is also checked against PyTorch. Target: ONNX Runtime >= 1.5x faster.

  PYTHONPATH=. .venv/bin/python benchmarks/vits_onnx.py [--bundle DIR] [--threads N] [--rounds 3] [--passive]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: a random full-size VITS)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both backends (0: torch default)")
    parser.add_argument("--rounds", type=int, default=3, help="alternate the backends this many times (one pass "
                        "over the sentences each), so load changes on a shared machine hit both alike")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--records", type=Path, help="append the tts-bench/1 records to this JSONL file")
    parser.add_argument("--passive", action="store_true", help="no busy-waiting threads in either backend "
                        "(OMP_WAIT_POLICY=PASSIVE, ORT allow_spinning=0): fairer on a shared, overloaded CPU")
    args = parser.parse_args(argv)
    if args.passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when torch's OpenMP starts: set before importing torch

    import torch

    from nbhelpers.bench.harness import append_record
    from nbhelpers.vits.config import TEST_SENTENCES, load_coqui_config
    from nbhelpers.vits.export import OnnxVits, compare_backends, export_onnx, load_model, synthesize, time_backends

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or make_full_bundle(Path(tmp))
        model = load_model(bundle / "model.pth", bundle / "config.json").cpu()
        onnx_path = bundle / "model.onnx"
        if not onnx_path.is_file():
            onnx_path = export_onnx(model, Path(tmp) / "model.onnx")
        onnx = OnnxVits(onnx_path, load_coqui_config(bundle / "config.json"), threads=threads,
                        spinning=not args.passive)
        check = compare_backends(model, onnx, tolerance=1e-3)
        backends = {"pytorch": (lambda t, **kw: synthesize(model, t, **kw), model, [bundle / "model.pth"]),
                    "onnxruntime": (onnx.synthesize, onnx_path, [onnx_path])}
        rounds = [time_backends(backends, repeats=1, warmup=args.warmup) for _ in range(args.rounds)]
    for i, records in enumerate(rounds):
        for rec in records.values():
            rec["notes"] = ("random-weight full-size VITS" if args.bundle is None else f"bundle {args.bundle}") + \
                f"; {threads} threads; deterministic noise; round {i + 1}/{args.rounds}" + \
                ("; passive thread waiting" if args.passive else "")
            if args.records:
                append_record(rec, args.records)
    speedups = [r["pytorch"]["rtf"] / r["onnxruntime"]["rtf"] for r in rounds]
    speedup = float(np.median(speedups))
    records = {name: min((r[name] for r in rounds), key=lambda rec: rec["rtf"]) for name in backends}
    pt = records["pytorch"]
    print(f"\nmodel: {'random full-size VITS' if args.bundle is None else args.bundle} "
          f"({pt['params'] / 1e6:.1f} M generator parameters), {len(TEST_SENTENCES)} Bangla sentences "
          f"({pt['audio_s']:.1f} s audio), {args.rounds} alternating rounds, {threads} threads"
          f"{', passive waiting' if args.passive else ''}, CPU: {pt['cpu']}")
    print("| backend | best-round RTF | RTF per round | median latency s (best round) | peak RSS MiB | size MiB |")
    print("|---|---:|---|---:|---:|---:|")
    for name, r in records.items():
        per_round = ", ".join(f"{rd[name]['rtf']:.3f}" for rd in rounds)
        print(f"| {name} | {r['rtf']:.3f} | {per_round} | {r['latency_s_median']:.3f} | "
              f"{r['peak_rss_mib']:.0f} | {r['disk_mib']:.0f} |")
    print(f"ONNX Runtime speed-up per round: {', '.join(f'{x:.2f}x' for x in speedups)}; median {speedup:.2f}x "
          f"(target >= 1.5x: {'met' if speedup >= 1.5 else 'NOT met'}); "
          f"max |ONNX - PyTorch| = {check['max_abs_diff']:.2e}, lengths match: {check['lengths_match']}")
    print(json.dumps({"speedup_median": speedup, "speedups": speedups, "check": check}, default=str))
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
