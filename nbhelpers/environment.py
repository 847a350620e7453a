"""Stage 00: print this stack's environment (platform, GPUs, dtype, package versions), save it in the workspace
and record it, so every later stage's record can be compared with the machine it ran on.

    python -m nbhelpers.environment report --profile smoke [--record]   # run in each stack by notebook 00
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from .cli import add_stage_arguments
from .env import environment_report
from .paths import Workspace
from .profiles import load_profile
from .records import append_stage_record, stage_run

STAGE = "00_environment"


def main(argv: list[str] | None = None) -> int:
    """``report``: print this stack's environment, save it as ``<workspace>/environment/<stack>.json`` and, with
    ``--record``, append notebook 00's stage record."""
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.environment", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="print and save this stack's environment report")
    add_stage_arguments(rep)
    rep.add_argument("--record", action="store_true", help="append the 00_environment stage record")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    suite = load_profile("suite", args.profile)
    with stage_run(STAGE, profile=suite["profile"], workspace=ws) if args.record else contextlib.nullcontext():
        report = environment_report(print_it=True)
        out = ws.stage_dir("environment") / f"{report.stack}.json"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report.as_dict(), indent=1), encoding="utf-8")
        tmp.replace(out)
        if args.record:
            append_stage_record(STAGE, profile=suite["profile"], workspace=ws, outputs={"report": out},
                                metrics={"gpus": len(report.gpus), "dtype": report.dtype,
                                         "cpu_count": report.cpu_count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
