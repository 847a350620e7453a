"""Stage 07 figures: training speed of the Pocket TTS fine-tune (seconds per step, wall and process CPU time),
synthesis speed of the exported checkpoint through the package loader (bench harness record), and the cost of
gradient accumulation: the same global batch as one batch (k=1) and as k micro-batches, side by side in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/pocket.py --workspace /tmp/pocket-bench [--dataset kn_smoke] [--steps 40]
        [--accum 4 --accum-steps 20]

Uses the smoke profile's tiny random-weight model unless --model is given (random weights: speed only).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--dataset", default="kn_smoke")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--accum", type=int, default=4, help="k: micro-batches per step in the accumulation comparison")
    ap.add_argument("--accum-steps", type=int, default=20, help="steps of each accumulation run (0: skip)")
    args = ap.parse_args()

    from nbhelpers.measure.harness import append_record, measure_synthesis
    from nbhelpers.paths import Workspace
    from nbhelpers.pocket.model import load_finetuned, synthesize
    from nbhelpers.pocket.stage import export, prepare
    from nbhelpers.pocket.train import train
    from nbhelpers.profiles import load_profile

    overrides = {"max_steps": args.steps, "save_every": 0, "val_every": 0}
    if args.model:
        overrides["model"] = args.model
    cfg = load_profile("pocket", args.profile, overrides)
    ws = Workspace(args.workspace)
    t0, c0 = time.time(), cpu_seconds()
    prep = prepare(cfg, workspace=ws, dataset=args.dataset, run="bench")
    t1, c1 = time.time(), cpu_seconds()
    result = train(cfg, prep.tts_model, prep.train_items, paths=prep.paths, workspace=ws, resume=False)
    t2, c2 = time.time(), cpu_seconds()
    out = export(prep, result)
    model = load_finetuned(out["config"], out["checkpoint"], temp=float(cfg["sample_temperature"]))
    texts = list(cfg["sample_sentences"])
    rec = measure_synthesis(f"pocket-{cfg['model']}-finetuned", "torch",
                            lambda t: (synthesize(model, [t], prep.voice_prompt, seed=0)[0], model.sample_rate),
                            texts, warmup=1, repeats=3, model=model, disk_paths=[out["checkpoint"]], language="kn",
                            notes="07_pocket_tts_finetune; random-weight tiny model: speed only")
    append_record(rec, ws.stage_dir("bench") / "records.jsonl")
    accumulation = compare_accumulation(cfg, ws, args) if args.accum_steps else None
    print(json.dumps({
        "prepare_wall_s": round(t1 - t0, 1), "prepare_cpu_s": round(c1 - c0, 1),
        "train_steps": result.step, "train_wall_s_per_step": round((t2 - t1) / max(result.step, 1), 3),
        "train_cpu_s_per_step": round((c2 - c1) / max(result.step, 1), 3),
        "loss_first10": round(sum(h["loss"] for h in result.history[:10]) / 10, 3),
        "loss_last10": round(sum(h["loss"] for h in result.history[-10:]) / 10, 3),
        "synth_rtf": rec.get("rtf"), "synth_latency_s_median": rec.get("latency_s_median"),
        "params": rec.get("params"), "peak_rss_mib": rec.get("peak_rss_mib"),
        "accumulation": accumulation,
        "load_average": open("/proc/loadavg").read().split()[:3],
    }, indent=1))


def compare_accumulation(cfg: dict, ws, args: argparse.Namespace) -> dict:
    """Seconds per optimiser step (wall and CPU) with the profile's batch as one batch and as ``--accum``
    micro-batches (same global batch, same utterances and random numbers), interleaved runs, each from scratch."""
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import train
    from nbhelpers.profiles import load_profile

    batch, k = int(cfg["batch_size"]), args.accum
    if batch % k:
        raise SystemExit(f"--accum {k} must divide the profile's batch_size {batch}")
    out = {}
    for name, micro, accum in ((f"k=1 (batch {batch})", batch, 1), (f"k={k} ({k} x {batch // k})", batch // k, k)):
        run_cfg = load_profile("pocket", args.profile, {**{key: cfg[key] for key in ("model", "save_every", "val_every")},
                                                        "max_steps": args.accum_steps, "batch_size": micro,
                                                        "grad_accum": accum})
        prep = prepare(run_cfg, workspace=ws, dataset=args.dataset, run=f"bench-accum-{accum}")
        t0, c0 = time.time(), cpu_seconds()
        result = train(run_cfg, prep.tts_model, prep.train_items, paths=prep.paths, workspace=ws, resume=False)
        t1, c1 = time.time(), cpu_seconds()
        out[name] = {"wall_s_per_step": round((t1 - t0) / result.step, 4), "cpu_s_per_step": round((c1 - c0) / result.step, 4),
                     "final_loss": round(result.history[-1]["loss"], 4)}
    first, second = out.values()
    out["overhead_wall"] = round(second["wall_s_per_step"] / first["wall_s_per_step"] - 1, 3)
    return out


if __name__ == "__main__":
    main()
