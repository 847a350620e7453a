"""Command line for stage 06: ``python -m nbhelpers.bench {run,systems,validate,listening-kit,aggregate}``."""

from __future__ import annotations

import argparse
import json
import sys


def _run(args: argparse.Namespace) -> int:
    from .run import run_benchmark

    overrides = json.loads(args.overrides) if args.overrides else None
    systems = [s for s in args.systems.split(",") if s] if args.systems else None
    summary = run_benchmark(args.profile, args.workspace, systems=systems, overrides=overrides)
    summary.pop("gallery")
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0 if summary["records"] else 1


def _measure_one(args: argparse.Namespace) -> int:
    from .run import measure_one

    result = measure_one(args.profile, args.workspace, args.variant, args.run, json.loads(args.overrides or "{}"))
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _systems(args: argparse.Namespace) -> int:
    from ..paths import Workspace
    from ..profiles import load_profile
    from .systems import discover

    variants, skipped = discover(Workspace(args.workspace), load_profile("bench", args.profile))
    for v in variants:
        print(f"{v.label}  [{', '.join(v.languages)}]  ({v.kind}: {v.source})")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .harness import RecordError, read_records

    try:
        records = read_records(args.records, strict=True)
    except RecordError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args.records}: {len(records)} valid tts-bench/1 records")
    return 0


def _kit(args: argparse.Namespace) -> int:
    from .listening import kit_items, make_kit

    summary = json.loads(open(args.summary, encoding="utf-8").read())
    items = kit_items(summary["gallery"])
    paths = make_kit(items, args.out, seed=args.seed)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from .listening import aggregate

    result = aggregate(args.csv, args.key)
    print(f"{'system':24s} {'MOS':>5s} {'95% CI':>15s} {'n':>4s}")
    for system, r in result.items():
        ci = f"±{r['ci95']:.2f}" if r["ci95"] is not None else "n/a (1 rating)"
        print(f"{system:24s} {r['mos']:5.2f} {ci:>15s} {r['n']:4d}")
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the stage's commands."""
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="benchmark every discovered system; write records, report, gallery, kit")
    run.add_argument("--profile", default="auto")
    run.add_argument("--workspace", default=None)
    run.add_argument("--systems", default="", help="comma-separated adapter names (default: all discovered)")
    run.add_argument("--overrides", default="", help='JSON of profile overrides, e.g. \'{"repeats": 3}\'')
    run.set_defaults(fn=_run)
    one = sub.add_parser("measure-one", help="(internal) measure one variant in this process, print JSON")
    one.add_argument("--profile", required=True)
    one.add_argument("--workspace", required=True)
    one.add_argument("--variant", required=True)
    one.add_argument("--run", required=True)
    one.add_argument("--overrides", default="")
    one.set_defaults(fn=_measure_one)
    systems = sub.add_parser("systems", help="list the variants that would be benchmarked, and what is skipped")
    systems.add_argument("--profile", default="auto")
    systems.add_argument("--workspace", default=None)
    systems.set_defaults(fn=_systems)
    val = sub.add_parser("validate", help="check a records.jsonl against the tts-bench/1 schema")
    val.add_argument("records")
    val.set_defaults(fn=_validate)
    kit = sub.add_parser("listening-kit", help="build a blind listening page from a run's summary.json")
    kit.add_argument("summary")
    kit.add_argument("--out", required=True)
    kit.add_argument("--seed", type=int, default=0)
    kit.set_defaults(fn=_kit)
    agg = sub.add_parser("aggregate", help="MOS with 95%% CI per system from returned rating CSVs")
    agg.add_argument("csv", nargs="+")
    agg.add_argument("--key", required=True, help="the kit's key.json")
    agg.add_argument("--json", action="store_true")
    agg.set_defaults(fn=_aggregate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
