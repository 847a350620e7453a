"""Arguments every stage's command line shares: profile, workspace, dataset, ``--set KEY=VALUE`` overrides
and the budget/stop options of the training stages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_stage_arguments(parser: argparse.ArgumentParser, *, dataset_help: str | None = None) -> None:
    parser.add_argument("--profile", default="auto", help="smoke, kaggle-t4, colab-t4 or auto (default)")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: $TTS_WORKSPACE, /kaggle/working...)")
    if dataset_help:
        parser.add_argument("--dataset", help=dataset_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a profile value")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stop-after", type=int, help="save and stop (resume_needed) at this step")
    parser.add_argument("--budget-seconds", type=float, help="time budget instead of the suite profile's")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set`` values: JSON when it parses (numbers, booleans, lists), else the plain string."""
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: write KEY=VALUE, e.g. --set max_steps=20")
        try:
            overrides[key] = json.loads(text)
        except ValueError:
            overrides[key] = text
    return overrides


def budget_from_args(args: argparse.Namespace):
    """A TimeBudget of ``--budget-seconds`` when given, else None (the stage uses the suite profile's)."""
    from .budget import TimeBudget

    return TimeBudget(args.budget_seconds) if getattr(args, "budget_seconds", None) else None
