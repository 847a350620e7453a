"""Command line for stage 01: ``python -m nbhelpers.data {prepare,sources,corpus,stats} ...``.

``prepare`` and ``sources`` take ``--profile``, ``--workspace`` and ``--set KEY=VALUE`` (any key of
``nbhelpers/profiles/data.toml``), as every stage command notebooks run through ``nb.run`` does."""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import add_stage_arguments, parse_overrides, positive_int
from ..paths import StageBusyError, Workspace, stage_lock
from .sources import FORMATS
from .text import SCRIPTS
from .validate import DataValidationError, SourceError

STAGE_LOCK = "data"  # one writing run of this stage per workspace (prepare, sources)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="prepare the profile's datasets, or one --source, into <workspace>/data/")
    add_stage_arguments(p)
    p.add_argument("--only", default="", help="comma-separated dataset names from the profile (default: all)")
    p.add_argument("--source", default=None, help="prepare this path / hf:<id> / url:<archive> / embedded:<kn|bn|en> "
                                                  "instead")
    p.add_argument("--name", default=None, help="dataset name for --source")
    p.add_argument("--language", choices=tuple(SCRIPTS), help="language for --source")
    p.add_argument("--format", default="auto",
                   choices=("auto", *FORMATS))
    p.add_argument("--columns", default=None, help='HF column mapping as JSON, e.g. \'{"text": "sentence"}\'')
    p.add_argument("--strict", action="store_true", help="fail with one summary error if anything is rejected")
    p.add_argument("--workers", type=positive_int, default=None)

    so = sub.add_parser("sources", help="write <workspace>/data/_report/sources.json: what prepare would read")
    add_stage_arguments(so)
    so.add_argument("--only", default="", help="comma-separated dataset names from the profile (default: all)")

    c = sub.add_parser("corpus", help="write an embedded espeak-ng smoke corpus (OpenSLR or LJSpeech layout)")
    c.add_argument("language", choices=tuple(SCRIPTS))
    c.add_argument("out")
    c.add_argument("--layout", default="openslr", choices=("openslr", "ljspeech"))
    c.add_argument("--sentences", type=positive_int, default=None)
    c.add_argument("--no-damage", action="store_true")

    s = sub.add_parser("stats", help="print stats.json of a prepared dataset")
    s.add_argument("name")
    s.add_argument("--workspace", default=None)

    args = parser.parse_args(argv)
    if args.command == "corpus":
        from .corpus import build_smoke_corpus

        print(build_smoke_corpus(args.language, args.out, layout=args.layout, n_sentences=args.sentences,
                                 damaged=not args.no_damage))
        return 0
    if args.command == "stats":
        from .layout import DatasetPaths

        print(DatasetPaths.find(args.name, Workspace(args.workspace)).stats.read_text(encoding="utf-8"))
        return 0
    try:
        with stage_lock(Workspace(args.workspace), STAGE_LOCK):
            return _write(parser, args)
    except (DataValidationError, SourceError, StageBusyError) as err:  # the user's input or a running stage:
        raise SystemExit(f"error: {err}") from None                      # one readable message, no traceback


def _write(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The writing commands, prepare and sources (run under the stage lock)."""
    overrides = {**parse_overrides(args.set),
                 **{k: v for k, v in {"strict": getattr(args, "strict", False) or None,
                                      "workers": getattr(args, "workers", None)}.items() if v is not None}}
    if args.command == "sources":
        from ..profiles import load_profile
        from .report import selected_datasets, write_sources

        params = load_profile("data", args.profile, overrides)
        names = selected_datasets(params, args.only)
        path = write_sources(params, names, Workspace(args.workspace))
        print(f"profile {params['profile']}: {', '.join(names)}; {params['workers']} worker processes, VAD "
              f"{params['vad']}, target {params['target_lufs']} LUFS, strict {params['strict']} -> {path}")
        return 0
    if args.source:
        if not (args.name and args.language):
            parser.error("--source needs --name and --language")
        from ..profiles import load_profile
        from . import clean_config_from_profile, resolve_source
        from .pipeline import prepare

        params = load_profile("data", args.profile, overrides)
        ws = Workspace(args.workspace)
        src, fmt = resolve_source(args.source, args.language, ws, format=args.format,
                                  sources_dir=params.get("sources_dir") or None)
        options = {"columns": json.loads(args.columns)} if args.columns else {}
        if fmt == "hf":
            options["allow_hub"] = params["allow_hub"]
        result = prepare(src, args.name, args.language, workspace=ws, format=fmt, reader_options=options,
                         clean=clean_config_from_profile(params), split_fractions=tuple(params["split_fractions"]),
                         speaker_disjoint=params["speaker_disjoint"], split_salt=params["split_salt"],
                         bin_edges=params.get("bin_edges"), workers=params["workers"], strict=params["strict"])
        results = {args.name: result}
    else:
        from . import run_profile

        results = run_profile(args.profile, args.workspace, only=args.only or None, overrides=overrides)
    for name, r in results.items():
        st = r.stats
        reasons = ", ".join(f"{n} {why}" for why, n in st["rejected_by_reason"].items())
        splits = ", ".join(f"{n} {split}" for split, n in st["splits"].items())
        print(f"{name}: read {st['read']} = kept {st['kept']} + rejected {st['rejected']}"
              f"{f' ({reasons})' if reasons else ''}; {st['hours'] * 60:.1f} min, {st['speakers']} speakers, "
              f"splits: {splits}; {r.seconds:.1f} s ({r.reused} reused) -> {r.paths.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
