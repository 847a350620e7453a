"""Stage 07 figures: training speed of the Pocket TTS fine-tune (seconds per step, wall and process CPU time)
and synthesis speed of the exported checkpoint through the package loader (bench harness record).

    PYTHONPATH=. .venv/bin/python benchmarks/pocket.py --workspace /tmp/pocket-bench [--dataset kn_smoke] [--steps 40]

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
    args = ap.parse_args()

    from nbhelpers.measure.harness import append_record, measure_synthesis
    from nbhelpers.paths import Workspace
    from nbhelpers.pocket.stage import export, load_finetuned, prepare, synthesize
    from nbhelpers.pocket.train import train
    from nbhelpers.profiles import load_profile

    overrides = {"max_steps": args.steps, "save_every": 0}
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
    print(json.dumps({
        "prepare_wall_s": round(t1 - t0, 1), "prepare_cpu_s": round(c1 - c0, 1),
        "train_steps": result.step, "train_wall_s_per_step": round((t2 - t1) / max(result.step, 1), 3),
        "train_cpu_s_per_step": round((c2 - c1) / max(result.step, 1), 3),
        "loss_first10": round(sum(h["loss"] for h in result.history[:10]) / 10, 3),
        "loss_last10": round(sum(h["loss"] for h in result.history[-10:]) / 10, 3),
        "synth_rtf": rec.get("rtf"), "synth_latency_s_median": rec.get("latency_s_median"),
        "params": rec.get("params"), "peak_rss_mib": rec.get("peak_rss_mib"),
        "load_average": open("/proc/loadavg").read().split()[:3],
    }, indent=1))


if __name__ == "__main__":
    main()
