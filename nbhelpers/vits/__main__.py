"""Command line for stage 04 (Coqui VITS, Bangla): pre-flight, train (budgeted, resumable) and synthesise.

Examples:
  python -m nbhelpers.vits preflight --profile smoke
  python -m nbhelpers.vits train --profile kaggle-t4             # resumes the newest run when there is one
  python -m nbhelpers.vits train --profile smoke --max-steps 20 --budget-seconds 60
  python -m nbhelpers.vits synth --text "আমার সোনার বাংলা" --out a.wav [--backend onnx-int8]
  python -m nbhelpers.vits quantize [--bundle DIR]               # add model.int8.onnx to a published bundle
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BACKENDS = ("torch", "onnx", "onnx-int8")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="auto", help="smoke, kaggle-t4, colab-t4 or auto (default)")
    p.add_argument("--workspace", type=Path, help="workspace folder (default: $TTS_WORKSPACE, /kaggle/working, ...)")
    p.add_argument("--dataset-dir", type=Path, help="LJSpeech folder (default: data prep's <dataset>/ljspeech)")
    p.add_argument("--start", help="starting point: tiny, full, bn-male, bn-female, en-vits (default: profile's)")
    p.add_argument("--restore-path", type=Path, help="fine-tune from this .pth (config.json beside it)")
    p.add_argument("--no-resume", action="store_true", help="start a new run even if one can be continued")


def _params(args: argparse.Namespace) -> dict:
    from ..profiles import load_profile

    overrides = {"start": args.start} if args.start else {}
    for key in ("max_steps", "budget_seconds"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "mixed_precision", False):
        overrides["mixed_precision"] = True
    if getattr(args, "onnx_int8", None) is not None:
        overrides["onnx_int8"] = args.onnx_int8
    return load_profile("vits", args.profile, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.vits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preflight", help="run the pre-flight checks only")
    _common(pre)
    tr = sub.add_parser("train", help="pre-flight, train until budget/steps, then publish outputs")
    _common(tr)
    tr.add_argument("--max-steps", type=int, help="stop after this many total steps (status done)")
    tr.add_argument("--budget-seconds", type=float, help="stop, save and exit cleanly after this long")
    tr.add_argument("--mixed-precision", action="store_true", help="opt in to fp16 autocast (NaN risk)")
    tr.add_argument("--no-finish", action="store_true", help="skip samples, ONNX export and timing")
    tr.add_argument("--onnx-int8", action=argparse.BooleanOptionalAction, default=None,
                    help="publish and time the int8 ONNX variant too (default: profile's onnx_int8)")
    sy = sub.add_parser("synth", help="synthesise text with the newest published model")
    sy.add_argument("--workspace", type=Path)
    sy.add_argument("--bundle", type=Path, help="bundle folder (default: newest under <workspace>/vits/model)")
    sy.add_argument("--text", required=True)
    sy.add_argument("--out", type=Path, required=True)
    sy.add_argument("--backend", choices=BACKENDS, default="torch",
                    help="torch (weight norm folded), onnx (fp32 ONNX Runtime) or onnx-int8 (model.int8.onnx)")
    sy.add_argument("--onnx", action="store_const", const="onnx", dest="backend", help="same as --backend onnx")
    qu = sub.add_parser("quantize", help="add the int8 ONNX variant (model.int8.onnx) to a published bundle")
    qu.add_argument("--workspace", type=Path)
    qu.add_argument("--bundle", type=Path, help="bundle folder (default: newest under <workspace>/vits/model)")
    args = parser.parse_args(argv)

    from ..paths import Workspace
    from .preflight import PreflightError

    ws = Workspace(args.workspace)
    try:
        if args.command in ("synth", "quantize"):
            return _bundle_command(args, ws)
        from .train import finish, prepare, train

        params = _params(args)
        prep = prepare(params, ws, dataset_dir=args.dataset_dir, restore_path=args.restore_path,
                       resume=not args.no_resume)
        if args.command == "preflight":
            return 0
        result = train(prep, record=args.no_finish)  # finish() writes the stage record otherwise
        if not args.no_finish:
            out = finish(result, params, ws, dataset_dir=prep.dataset_dir)
            print(json.dumps(out["metrics"], indent=1, default=str, ensure_ascii=False))
        return 0
    except PreflightError as e:
        print(e, file=sys.stderr)
        return 2


def _bundle_command(args: argparse.Namespace, ws) -> int:
    """synth or quantize on the given bundle, or the newest published one."""
    import soundfile as sf

    from .config import SAMPLE_RATE, load_coqui_config
    from .export import OnnxVits, fold_weight_norm, latest_bundle, load_model, onnx_file, synthesize

    bundle = args.bundle or latest_bundle(ws)
    if bundle is None:
        print(f"no published VITS model under {ws.root / 'vits' / 'model'}: train first", file=sys.stderr)
        return 2
    try:
        if args.command == "quantize":
            from .quantize import quantize_bundle

            print(f"wrote {quantize_bundle(bundle)}")
            return 0
        if args.backend == "torch":
            audio = synthesize(fold_weight_norm(load_model(bundle / "model.pth")), args.text)
        else:
            path = onnx_file(bundle, "int8" if args.backend == "onnx-int8" else "fp32")
            audio = OnnxVits(path, load_coqui_config(bundle / "config.json")).synthesize(args.text)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    sf.write(args.out, audio, SAMPLE_RATE)
    print(f"wrote {args.out} ({len(audio) / SAMPLE_RATE:.2f} s) from {bundle} ({args.backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
