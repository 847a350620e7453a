"""Resume cost and step time of the trainers built on ``nbhelpers.training.Run`` (Parler: stage 02 and 03's loop;
Pocket TTS: stage 07), with the tiny random-weight models on seeded noise data (speed only).

Each repeat trains ``--steps`` steps stopping half-way (``stop_after``: the budget-stop path, a checkpoint), then
times the resumed session that finishes the run: its wall time, its seconds per step (the trainer's own figure) and
the set-up-and-resume overhead (wall minus the steps). Run it on two trees (e.g. a ``git worktree`` of an older
commit) alternately to compare them under the same load:

  PYTHONPATH=. .venv-parler/bin/python benchmarks/resume.py --family parler --steps 12 --repeats 3
  PYTHONPATH=. .venv/bin/python benchmarks/resume.py --family pocket --steps 40 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pocket_corpus(folder: Path, n: int = 12) -> Path:
    """A pocket-layout corpus (train.json, validation.json, 24 kHz wavs) of seeded noise with Kannada text."""
    import numpy as np
    import soundfile as sf

    from nbhelpers.data.corpus import SENTENCES

    rng = np.random.default_rng(0)
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        audio = (0.1 * rng.standard_normal(int(rng.uniform(1, 2.5) * 24000))).astype(np.float32)
        sf.write(folder / "wavs" / f"u{i}.wav", audio, 24000)
        rows.append({"audio_path": f"wavs/u{i}.wav", "text": SENTENCES["kn"][i % len(SENTENCES["kn"])],
                     "language": "kn", "duration": len(audio) / 24000, "speaker": f"spk_{i % 2}", "id": f"u{i}"})
    (folder / "train.json").write_text(json.dumps(rows[:n - 2], ensure_ascii=False))
    (folder / "validation.json").write_text(json.dumps(rows[n - 2:], ensure_ascii=False))
    return folder


def session(family: str, root: Path, data: Path, run: str, steps: int, stop_after: int | None):
    """One training session of ``family``; returns (wall seconds, the trainer's result)."""
    from nbhelpers.budget import TimeBudget
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    ws = Workspace(root)
    budget = TimeBudget(3600)
    if family == "parler":
        from nbhelpers.parler.train import train

        cfg = load_profile("parler", "smoke", {"max_steps": steps, "batch_size": 4, "eval_every": 0, "save_every": 0,
                                               "sample_max_seconds": 0.05, "gen_eval_every": 0, "warmup_steps": 0})
        started = time.perf_counter()
        result = train(cfg, workspace=ws, dataset=str(data), run=run, budget=budget, stop_after=stop_after)
        return time.perf_counter() - started, result
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import train

    cfg = load_profile("pocket", "smoke", {"max_steps": steps, "batch_size": 4, "save_every": 0, "val_every": 0,
                                           "warmup_steps": 1, "voice_prompt_frames": 12})
    prep = prepare(cfg, workspace=ws, dataset=str(data), run=run)
    started = time.perf_counter()
    result = train(cfg, prep.tts_model, prep.train_items, paths=prep.paths, workspace=ws, budget=budget,
                   stop_after=stop_after)
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("parler", "pocket"), required=True)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    half = args.steps // 2
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"resume-{args.family}-") as tmp:
        if args.family == "parler":
            from parler_train_options import dataset

            data = dataset(Path(tmp) / "data")
        else:
            data = pocket_corpus(Path(tmp) / "data")
        for i in range(args.repeats):
            run = f"r{i}"
            _, first = session(args.family, Path(tmp) / "ws", data, run, args.steps, half)
            assert first.status == "resume_needed" and first.step == half, (first.status, first.step)
            wall, resumed = session(args.family, Path(tmp) / "ws", data, run, args.steps, None)
            assert resumed.status == "done" and resumed.step == args.steps
            per_step = resumed.metrics["seconds_per_step"]
            rows.append({"resumed_session_s": round(wall, 3), "s_per_step": per_step,
                         "setup_and_resume_s": round(wall - per_step * (args.steps - half), 3)})
    summary = {k: round(statistics.median(r[k] for r in rows), 4) for k in rows[0]}
    print(f"{args.family}: tiny model, {args.steps} steps stopped at {half} and resumed, {args.repeats} repeats, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {open('/proc/loadavg').read().split()[:3]}")
    print(json.dumps({"median": summary, "repeats": rows}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"family": args.family, "median": summary, "repeats": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
