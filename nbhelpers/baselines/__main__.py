"""Command line for stage 08 (FastSpeech2 + HiFi-GAN baselines, coqui-tts): train both models on data prep's
LJSpeech-style export on a time budget (continuing the newest runs), publish one bundle with samples of the test
sentences, and synthesise with it.

Examples:
  python -m nbhelpers.baselines train --profile smoke
  python -m nbhelpers.baselines train --profile kaggle-t4             # continues the newest runs when there are any
  python -m nbhelpers.baselines train --profile smoke --set fastspeech2_max_steps=20 --no-resume
  python -m nbhelpers.baselines synth --text "আমার সোনার বাংলা" --out a.wav [--bundle DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import add_stage_arguments, parse_overrides, positive_float


def _params(args: argparse.Namespace) -> dict:
    from ..profiles import load_profile

    overrides = parse_overrides(args.set)
    if "dataset_dir" in overrides:  # a path, not a profile value: `--set dataset_dir=...` is --dataset-dir
        args.dataset_dir = Path(overrides.pop("dataset_dir"))
    if getattr(args, "budget_seconds", None) is not None:
        overrides["budget_seconds"] = args.budget_seconds
    return load_profile("baselines", args.profile, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.baselines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="pre-flight, train FastSpeech2 then HiFi-GAN, publish the bundle and samples")
    add_stage_arguments(tr)
    tr.add_argument("--dataset-dir", type=Path, help="LJSpeech folder (default: data prep's <dataset>/ljspeech)")
    tr.add_argument("--budget-seconds", type=positive_float, help="this session's time budget for both models")
    tr.add_argument("--no-resume", action="store_true", help="start new runs even if some can be continued")
    sy = sub.add_parser("synth", help="synthesise text with the newest published bundle")
    add_stage_arguments(sy)
    sy.add_argument("--bundle", type=Path, help="bundle folder (default: newest under <workspace>/baselines/model)")
    sy.add_argument("--text", required=True)
    sy.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from ..paths import Workspace

    ws = Workspace(args.workspace)
    if args.command == "synth":
        return _synth(args, ws)
    from ..training import run_guarded
    from . import STAGE

    return run_guarded(STAGE, args.profile, ws, lambda: _train(args, ws))


def _train(args: argparse.Namespace, ws) -> int:
    """Pre-flight (failures print their report and return 2), train both models, publish."""
    from ..vits.preflight import PreflightError
    from .train import finish, prepare, train_both

    params = _params(args)
    try:
        prep = prepare(params, ws, dataset_dir=args.dataset_dir)
    except PreflightError as e:
        print(e, file=sys.stderr)
        return 2
    finish(train_both(prep, resume=not args.no_resume), prep)
    return 0


def _synth(args: argparse.Namespace, ws) -> int:
    import soundfile as sf

    from .synth import latest_bundle, load_bundle

    bundle = args.bundle or latest_bundle(ws)
    if bundle is None:
        print(f"no published baselines bundle under {ws.root / 'baselines' / 'model'}: run "
              "`python -m nbhelpers.baselines train` first", file=sys.stderr)
        return 2
    try:
        baseline = load_bundle(bundle)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    audio = baseline.synthesize(args.text)
    sf.write(args.out, audio, baseline.sample_rate)
    print(f"wrote {args.out} ({len(audio) / baseline.sample_rate:.2f} s) from {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
