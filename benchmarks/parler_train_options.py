"""Stage 02's training-speed settings side by side in one run: the decoder's attention (sdpa | eager) and compile
(torch.compile of the training forward), each variant training the same steps on the same data through the real
trainer (``nbhelpers.parler.train.train``), with the tiny random-weight model. Reports s/step (the trainer's own,
after the first step), the first step's time (compiling, when compile is on), the whole run and the final loss.

  python benchmarks/parler_train_options.py --steps 30            # CPU
  python benchmarks/parler_train_options.py --steps 200 --model mini-v1   # GPU (real weights from the hub)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {"sdpa": {"attention": "sdpa"}, "eager": {"attention": "eager"},
            "sdpa + compile": {"attention": "sdpa", "compile": True}}


def dataset(folder: Path, n: int = 24):
    """A saved DatasetDict of seeded noise clips (1-3 s, 44.1 kHz) with Kannada transcripts and descriptions."""
    import datasets
    import numpy as np

    from nbhelpers.data.corpus import SENTENCES

    rng = np.random.default_rng(0)
    rows = [{"audio": {"array": (0.1 * rng.standard_normal(int(rng.uniform(1, 3) * 44100))).astype(np.float32),
                       "sampling_rate": 44100}, "text": SENTENCES["kn"][i % len(SENTENCES["kn"])],
             "text_description": "A female speaker talks slowly in a quiet room."} for i in range(n)]
    features = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                                  "text_description": datasets.Value("string")})
    cut = {"train": rows[:n - 8], "validation": rows[n - 8:n - 4], "test": rows[n - 4:]}
    datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=features) for k, v in cut.items()}) \
        .save_to_disk(str(folder))
    return folder


def main(argv: list[str] | None = None) -> int:
    import torch

    from nbhelpers.parler.train import train
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--model", default="tiny")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="parler-options-") as tmp:
        data = dataset(Path(tmp) / "data")
        ws = Workspace(Path(tmp) / "ws")  # one workspace: the codes are encoded once, by the first variant
        for name, settings in VARIANTS.items():
            cfg = load_profile("parler", "smoke", {
                "model": args.model, "max_steps": args.steps, "batch_size": args.batch, "eval_every": 0,
                "save_every": 0, "sample_max_seconds": 0.05, "gen_eval_every": 0, "warmup_steps": 0, **settings})
            started = time.perf_counter()
            result = train(cfg, workspace=ws, dataset=str(data), run=name.replace(" + ", "-"))
            wall = time.perf_counter() - started
            m = result.metrics
            steady = (m["seconds_per_step"] * m["step"] - m["first_step_seconds"]) / max(1, m["step"] - 1)
            rows.append({"variant": name, "attention": result.metrics["attention"], "compile": result.metrics["compile"],
                         "fallbacks": result.metrics["fallbacks"], "step_s": round(steady, 4),
                         "first_step_s": m["first_step_seconds"], "run_s": round(wall, 1),
                         "final_loss": round(result.history[-1]["loss"], 4)})
    print(f"model {args.model}, {args.steps} steps, batch {args.batch}, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| variant | s/step after the first | first step s (compile) | whole run s | final loss | fallbacks |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['step_s']} | {r['first_step_s']} | {r['run_s']} | {r['final_loss']} | "
              f"{r['fallbacks'] or '-'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
