"""Command line for stage 02 (Parler-TTS fine-tune, Kannada), on the parler stack.

Examples:
  python -m nbhelpers.parler coverage --profile smoke
  python -m nbhelpers.parler train --profile smoke                    # resumes the run when a checkpoint exists
  python -m nbhelpers.parler train --profile kaggle-t4 --mode lora
  accelerate launch --num_processes 2 -m nbhelpers.parler train --profile kaggle-t4   # Kaggle T4 x2
  python -m nbhelpers.parler train --profile smoke --set max_steps=20 --set learning_rate=1e-3
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import add_stage_arguments, add_training_arguments, budget_from_args


def _config(args: argparse.Namespace) -> dict:
    from ..cli import parse_overrides
    from ..profiles import load_profile

    overrides = parse_overrides(args.set)
    for key in ("mode", "model", "max_steps"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    return load_profile("parler", args.profile, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.parler", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("coverage", "check that the prompt tokenizer represents the training transcripts"),
                       ("train", "coverage check, train or resume, export and stage record")):
        p = sub.add_parser(name, help=text)
        add_stage_arguments(p, dataset_help="prepared dataset name or a saved DatasetDict folder (default: profile's)")
        p.add_argument("--model", help="tiny, indic, mini-v1, a hub id or a local folder (default: profile's)")
        if name == "train":
            p.add_argument("--mode", choices=("full", "lora", "8bit", "4bit"))
            p.add_argument("--max-steps", type=int)
            p.add_argument("--run", default="run", help="run name: its folder is <workspace>/parler/<run>")
            add_training_arguments(p)
    args = parser.parse_args(argv)

    from ..paths import Workspace

    cfg = _config(args)
    ws = Workspace(args.workspace)
    if args.command == "coverage":
        from .stage import coverage_report

        print(json.dumps(coverage_report(cfg, workspace=ws, dataset=args.dataset), ensure_ascii=False, indent=1))
        return 0
    from .stage import run_stage

    budget = budget_from_args(args)
    result, outputs = run_stage(cfg, workspace=ws, dataset=args.dataset, run=args.run, budget=budget,
                                stop_after=args.stop_after)
    if outputs:
        print(json.dumps({"status": result.status, "step": result.step, "metrics": result.metrics,
                          "outputs": {k: str(v) for k, v in outputs.items() if k != "samples"}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
