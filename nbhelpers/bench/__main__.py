"""Command line for stage 06: ``python -m nbhelpers.bench {run,study,finetune-study,size-study,systems,mos,profile,validate,listening-kit,aggregate}``.

``run``, ``systems``, ``mos`` and ``profile`` take ``--profile``, ``--workspace`` and ``--set KEY=VALUE`` (any key of
``nbhelpers/profiles/bench.toml``, e.g. ``--set systems='["piper-joe"]'``), as every stage command notebooks run
through ``nb.run`` does."""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import add_stage_arguments, non_negative_int, parse_overrides, positive_int


def _overrides(args: argparse.Namespace) -> dict | None:
    """``--set`` values, then the older ``--overrides`` JSON on top; None when neither is given."""
    merged = {**parse_overrides(args.set), **(json.loads(args.overrides) if getattr(args, "overrides", "") else {})}
    return merged or None


def _run(args: argparse.Namespace) -> int:
    from ..profiles import load_profile
    from .run import run_benchmark
    from .view import judge_run

    systems = [s for s in args.systems.split(",") if s] if args.systems else None
    summary = run_benchmark(args.profile, args.workspace, systems=systems, overrides=_overrides(args))
    if summary["records"]:
        judge_run(load_profile("bench", args.profile, _overrides(args)), summary)
    print(f"run {summary['run']}: {summary['records']} records from {summary['variants']} variants -> "
          f"{summary['records_path']}")
    for name, why in summary["skipped"].items():
        print(f"  skipped {name}: {why}")
    for label, why in summary["failures"].items():
        print(f"  FAILED {label}: {why}")
    print(f"report: {summary['report_md']} | listening page: {summary['listening_page'] or 'none'}")
    if not summary["records"]:
        print("no system produced a record: see the skipped systems and failures above", file=sys.stderr)
    return 0 if summary["records"] else 1


def _study(args: argparse.Namespace) -> int:
    from ..paths import Workspace
    from ..profiles import load_profile
    from .view import judge_run

    path = Workspace(args.workspace).stage_dir("bench", create=False) / "summary.json"
    if not path.is_file():
        print(f"{path} is missing: run `python -m nbhelpers.bench run` first", file=sys.stderr)
        return 1
    view = judge_run(load_profile("bench", args.profile, _overrides(args)), json.loads(path.read_text(encoding="utf-8")))
    print(f"study report: {view['study']['markdown']} | {view['study']['html']}")
    return 0


def _sizes(args: argparse.Namespace) -> int:
    from ..paths import Workspace
    from .sizes import parse_points, run_size_study

    distill = args.stage == "distill"
    try:
        points = parse_points(args.points or ("layers=2;layers=4;layers=8" if distill else
                                              "hidden=64;hidden=128;hidden=256,layers=2"), args.stage)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    study = run_size_study(args.profile, Workspace(args.workspace), points, args.steps, teacher=args.teacher,
                           stage=args.stage)
    for row in study["points"]:
        if distill and row.get("params_total_ratio") is not None:
            figures = (f"params {row['params_total']} ({row['params_total_ratio']:.2f} of the teacher) | speed-up "
                       f"{row['speedup']} | test CE {row['test_ce']} | {row['seconds_per_step']} s/step")
        elif not distill and row.get("rtf") is not None:
            figures = (f"params {row['params_total']} | RTF {row['rtf']} | final mel loss {row['final_mel_loss']} | "
                       f"{row['seconds_per_step']} s/step")
        else:
            figures = row.get("reason", row.get("status", ""))
        print(f"{row['point']:>14}: {row['status']} {figures}")
    print(f"wrote {study['path']}")
    return 0 if any(r["status"] == "done" for r in study["points"]) else 1


def _finetune(args: argparse.Namespace) -> int:
    from ..paths import Workspace
    from .finetune import DEFAULT_VARIANTS, parse_variants, run_study

    try:
        variants = parse_variants(args.variants or DEFAULT_VARIANTS[args.stage], args.stage)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    study = run_study(args.profile, Workspace(args.workspace), variants, args.steps, stage=args.stage)
    for row in study["variants"]:
        peak = (f"peak {row['peak_memory_gib']} GiB" if row.get("peak_memory_gib") is not None else
                f"peak RSS {row.get('peak_rss_mib')} MiB")
        figures = (f"trainable {row['trainable_pct']}% | {peak} | "
                   f"{row['seconds_per_step']} s/step | final loss {row['final_loss']}" if row.get("steps") else
                   row.get("reason", ""))
        print(f"{row['variant']:>12}: {row['status']} {figures}")
    print(f"wrote {study['path']}")
    return 0 if any(r.get("steps") for r in study["variants"]) else 1


def _measure_one(args: argparse.Namespace) -> int:
    from .run import measure_one

    result = measure_one(args.profile, args.workspace, args.variant, args.run, json.loads(args.overrides or "{}"))
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _systems(args: argparse.Namespace) -> int:
    from ..measure.ort import ort_providers
    from ..paths import Workspace
    from ..profiles import load_profile
    from ..records import write_json
    from .systems import discover
    from .view import systems_view

    ws = Workspace(args.workspace)
    params = load_profile("bench", args.profile, _overrides(args))
    variants, skipped = discover(ws, params, params.get("systems") or None)
    for v in variants:
        print(f"{v.label}  [{', '.join(v.languages)}]  ({v.kind}: {v.source})")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    path = write_json(ws.stage_dir("bench") / "systems.json", systems_view(variants, skipped, ort_providers()))
    print(f"-> {path}")
    return 0


def _mos(args: argparse.Namespace) -> int:
    from ..paths import Workspace
    from ..profiles import load_profile
    from ..records import write_json
    from .view import mos_view

    load_profile("bench", args.profile, _overrides(args))  # checks the profile and --set keys
    ws = Workspace(args.workspace)
    folder = ws.stage_dir("bench") / "listening"
    page = folder / "index.html"
    view = mos_view(sorted(ws.stage_dir("bench").glob(args.ratings_glob)), folder / "key.json",
                    str(page) if page.is_file() else None)
    print(f"listening page: {view['page'] or 'none (run the benchmark first)'}; {view['note']}")
    for row in view["rows"]:
        print(f"  {row['system']:24s} MOS {row['MOS']:.2f} {row['95% CI']}  n={row['ratings']}")
    print(f"-> {write_json(folder / 'mos.json', view)}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from .run import profile_variants

    try:
        view = profile_variants(args.profile, args.workspace, match=args.match, calls=args.calls,
                                overrides=_overrides(args))
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    for r in view["results"]:
        top = ", ".join(f"{row['operator']} {row['share %']}%" for row in r["top"][:3])
        print(f"{r['variant']}: {r['calls']} calls, {r['profiled_ms']} ms profiled; top: {top} -> {r['trace']}")
    for label, why in view["failures"].items():
        print(f"  FAILED {label}: {why}")
    return 0 if view["results"] else 1


def _validate(args: argparse.Namespace) -> int:
    """Check each path: a records JSONL against schema tts-bench/1, a WAV (or every WAV under a folder) for audio
    faults (nbhelpers.measure.audiocheck); exit 1 naming every missing path, bad record and faulty clip."""
    from pathlib import Path

    from ..measure.audiocheck import audio_faults
    from ..measure.harness import RecordError, read_records

    failed = False
    for path in map(Path, args.paths):
        if not path.exists():
            print(f"{path}: does not exist; give a records file (<workspace>/bench/records.jsonl), a WAV or a folder "
                  "of WAVs", file=sys.stderr)
            failed = True
        elif path.is_dir() or path.suffix.lower() == ".wav":
            wavs = sorted(path.rglob("*.wav")) if path.is_dir() else [path]
            faulty = 0
            for wav in wavs:
                faults = audio_faults(wav)
                faulty += bool(faults)
                for fault in faults:
                    print(f"{wav}: {fault}", file=sys.stderr)
            print(f"{path}: {len(wavs) - faulty} of {len(wavs)} clip(s) sound")
            failed |= faulty > 0 or not wavs
        else:
            try:
                records = read_records(path, strict=True)
            except (RecordError, ValueError) as e:  # ValueError: not UTF-8 text
                print(f"{path}: {e}" if str(path) not in str(e) else e, file=sys.stderr)
                failed = True
                continue
            print(f"{path}: {len(records)} valid tts-bench/1 records")
            if not records:
                print(f"{path}: holds no records; run the benchmark first (python -m nbhelpers.bench run)",
                      file=sys.stderr)
                failed = True
    return 1 if failed else 0


def _kit(args: argparse.Namespace) -> int:
    from ..measure.listening import kit_items, make_kit

    summary = json.loads(open(args.summary, encoding="utf-8").read())
    items = kit_items(summary["gallery"])
    paths = make_kit(items, args.out, seed=args.seed)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from ..measure.listening import aggregate

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
    add_stage_arguments(run)
    run.add_argument("--systems", default="", help="comma-separated adapter names (default: all discovered)")
    run.add_argument("--overrides", default="", help='JSON of profile overrides, e.g. \'{"repeats": 3}\'')
    run.set_defaults(fn=_run)
    study = sub.add_parser("study", help="rebuild the report and the study report (what was trained at what cost, "
                                         "fine-tuning modes, system per language and hardware, limitations) from "
                                         "the records of the last run")
    add_stage_arguments(study)
    study.set_defaults(fn=_study)
    ft = sub.add_parser("finetune-study", help="train stage 02 (or 04 with --stage vits) once per fine-tuning variant "
                                              "(full, LoRA ranks, QLoRA) on the same data and steps; write "
                                              "<workspace>/bench/finetune/ (finetune-vits/)")
    add_stage_arguments(ft)
    ft.add_argument("--stage", choices=("parler", "vits"), default="parler",
                    help="parler: stage 02 (full, lora, 8bit, 4bit); vits: stage 04 (full, lora)")
    ft.add_argument("--variants", help="comma-separated: full, lora:<rank>, 8bit:<rank>, 4bit:<rank> (8/4-bit: Parler, "
                                       "need CUDA); default full,lora:8,lora:32 (+ 4bit:8 for parler)")
    ft.add_argument("--steps", type=positive_int, default=200, help="the same step budget for every variant")
    ft.set_defaults(fn=_finetune)
    sz = sub.add_parser("size-study", help="run stage 03 once per student size (decoder layers, width, heads, text "
                                           "encoder) on the same teacher, data and steps, or with --stage baselines "
                                           "stage 08 once per FastSpeech2 shape; write <workspace>/bench/sizes/ "
                                           "(sizes-fastspeech2/)")
    add_stage_arguments(sz)
    sz.add_argument("--stage", choices=("distill", "baselines"), default="distill",
                    help="distill: Parler students of stage 03; baselines: FastSpeech2 shapes of stage 08")
    sz.add_argument("--points", help="size points separated by ';', knobs by ',': distill: layers, hidden, ffn, heads, "
                                     "text_layers (0: the teacher's), e.g. \"layers=1;layers=2,hidden=32,heads=2\" "
                                     "(default layers=2;layers=4;layers=8); baselines: hidden, layers, heads, ffn (0: "
                                     "the size preset's; default hidden=64;hidden=128;hidden=256,layers=2)")
    sz.add_argument("--steps", type=positive_int, default=200, help="the same step budget for every size")
    sz.add_argument("--teacher", help="distill: teacher for every point (default: the distill profile's)")
    sz.set_defaults(fn=_sizes)
    one = sub.add_parser("measure-one", help="(internal) measure one variant in this process, print JSON")
    one.add_argument("--profile", required=True)
    one.add_argument("--workspace", required=True)
    one.add_argument("--variant", required=True)
    one.add_argument("--run", required=True)
    one.add_argument("--overrides", default="")
    one.set_defaults(fn=_measure_one)
    systems = sub.add_parser("systems", help="list the variants that would be benchmarked, and what is skipped; "
                                             "write <workspace>/bench/systems.json")
    add_stage_arguments(systems)
    systems.set_defaults(fn=_systems)
    mos = sub.add_parser("mos", help="MOS per system from returned listening-test CSVs; write "
                                     "<workspace>/bench/listening/mos.json")
    add_stage_arguments(mos)
    mos.add_argument("--ratings-glob", default="listening/returned/*.csv",
                     help="returned rating CSVs, relative to <workspace>/bench")
    mos.set_defaults(fn=_mos)
    prof = sub.add_parser("profile", help="torch.profiler traces of N syntheses per variant; write "
                                          "<workspace>/bench/profile/ (Chrome traces, top operators, profile.json)")
    add_stage_arguments(prof)
    prof.add_argument("--match", default="", help="profile the variants whose label contains this (default: all)")
    prof.add_argument("--calls", type=positive_int, default=3, help="traced syntheses per variant (after one warm-up)")
    prof.set_defaults(fn=_profile)
    val = sub.add_parser("validate", help="check records.jsonl files against the tts-bench/1 schema, and WAVs (or "
                                          "folders of WAVs) for audio faults; exit 1 naming each problem")
    val.add_argument("paths", nargs="+", metavar="PATH", help="a records JSONL, a WAV, or a folder of WAVs")
    val.set_defaults(fn=_validate)
    kit = sub.add_parser("listening-kit", help="build a blind listening page from a run's summary.json")
    kit.add_argument("summary")
    kit.add_argument("--out", required=True)
    kit.add_argument("--seed", type=non_negative_int, default=0)
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
