"""Arguments every stage's command line shares: profile, workspace, dataset, ``--set KEY=VALUE`` overrides
and the budget/stop options of the training stages."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _number(kind: type, minimum: float, inclusive: bool) -> Callable[[str], Any]:
    """An argparse ``type`` that parses ``kind`` and refuses values below ``minimum`` with a clear usage error."""
    words = f"{'whole ' * (kind is int)}number {'>=' if inclusive else '>'} {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {words}") from None
        if not (value >= minimum if inclusive else value > minimum):  # NaN compares false: refused too
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a {words}")
        return value
    return parse


positive_int = _number(int, 0, inclusive=False)
positive_float = _number(float, 0, inclusive=False)
non_negative_int = _number(int, 0, inclusive=True)
non_negative_float = _number(float, 0, inclusive=True)


def _settings_error_hook(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    """A SettingsError that ends a stage's command line prints as its message alone (it names the key, the value,
    where it came from and the fix); anything else keeps Python's traceback."""
    from .profiles import SettingsError

    if issubclass(kind, SettingsError):
        print(f"error: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, traceback)


def add_stage_arguments(parser: argparse.ArgumentParser, *, dataset_help: str | None = None) -> None:
    """The options every stage command shares; a settings error of the command then prints without a traceback.
    The command's ``--help`` ends with the stage's settings (meaning, allowed values, value per profile), found from
    the parser's name (``python -m nbhelpers.<stage> ...``)."""
    from .profiles import PROFILE_DIR, settings_help

    sys.excepthook = _settings_error_hook
    match = re.search(r"nbhelpers\.(\w+)", parser.prog)
    if match and (PROFILE_DIR / f"{match.group(1)}.toml").is_file():
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = settings_help(match.group(1))
    parser.add_argument("--profile", default="auto", help="smoke, kaggle-t4, colab-t4 or auto (default)")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: $TTS_WORKSPACE, /kaggle/working...)")
    if dataset_help:
        parser.add_argument("--dataset", help=dataset_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a profile value")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stop-after", type=positive_int, help="save and stop (resume_needed) at this step")
    parser.add_argument("--budget-seconds", type=positive_float, help="time budget instead of the suite profile's")


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
