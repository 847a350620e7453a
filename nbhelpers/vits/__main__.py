"""Command line for stage 04 (Coqui VITS, Bangla): pre-flight, train (budgeted, resumable), finish (publish,
samples, plots, timing) and synthesise. One process, one GPU (see docs/vits.md: coqui's DDP mode is not used).

Every command writes what notebook 04 shows into the workspace: <workspace>/vits/preflight.json (pre-flight),
<run>/session.json (how a training session ended), losses.png, samples/ (+ samples.jsonl), timing.json/timing.md.

Examples:
  python -m nbhelpers.vits preflight --profile smoke
  python -m nbhelpers.vits train --profile kaggle-t4             # resumes the newest run when there is one
  python -m nbhelpers.vits train --profile smoke --max-steps 20 --budget-seconds 60
  python -m nbhelpers.vits train --profile smoke --no-finish     # one session; then:
  python -m nbhelpers.vits train --profile smoke --no-finish --resume-session   # smoke: a second session
  python -m nbhelpers.vits finish --profile smoke                # publish the newest session's best model
  python -m nbhelpers.vits synth --text "আমার সোনার বাংলা" --out a.wav [--backend auto|torch|onnx|onnx-int8]
  python -m nbhelpers.vits synth --text "..." --text "..." --out clips/ [--batch-size 4]   # batched, one WAV each
  python -m nbhelpers.vits quantize [--bundle DIR]               # add model.int8.onnx to a published bundle
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import add_stage_arguments, parse_overrides, positive_float, positive_int

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def _common(p: argparse.ArgumentParser) -> None:
    add_stage_arguments(p)
    p.add_argument("--dataset-dir", type=Path, help="LJSpeech folder (default: data prep's <dataset>/ljspeech)")
    p.add_argument("--start", help="starting point: tiny, full, bn-male, bn-female, en-vits (default: profile's)")
    p.add_argument("--restore-path", type=Path, help="fine-tune from this .pth (config.json beside it)")
    p.add_argument("--no-resume", action="store_true", help="start a new run even if one can be continued")


def _params(args: argparse.Namespace) -> dict:
    from ..profiles import load_profile

    overrides = parse_overrides(getattr(args, "set", []))
    for key in ("dataset_dir", "restore_path"):  # paths, not profile values: `--set dataset_dir=...` is --dataset-dir
        if key in overrides:
            value = overrides.pop(key)
            if value not in (None, "") and hasattr(args, key):
                setattr(args, key, Path(value))
    if getattr(args, "start", None):
        overrides["start"] = args.start
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
    tr.add_argument("--max-steps", type=positive_int, help="stop after this many total steps (status done)")
    tr.add_argument("--budget-seconds", type=positive_float, help="stop, save and exit cleanly after this long")
    tr.add_argument("--mixed-precision", action="store_true", help="opt in to fp16 autocast (NaN risk)")
    tr.add_argument("--no-finish", action="store_true", help="skip samples, ONNX export and timing")
    tr.add_argument("--onnx-int8", action=argparse.BooleanOptionalAction, default=None,
                    help="publish and time the int8 ONNX variant too (default: profile's onnx_int8)")
    tr.add_argument("--resume-session", action="store_true",
                    help="a short second session (smoke demonstration): continue the newest run for the profile's "
                         "resume_steps more steps within resume_budget_seconds; fails if the step counter restarts")
    fi = sub.add_parser("finish", help="publish the newest session's best model: bundle, samples, loss plot, timing")
    add_stage_arguments(fi)
    fi.add_argument("--onnx-int8", action=argparse.BooleanOptionalAction, default=None)
    sy = sub.add_parser("synth", help="synthesise text with the newest published model")
    add_stage_arguments(sy)
    sy.add_argument("--bundle", type=Path, help="bundle folder (default: newest under <workspace>/vits/model)")
    sy.add_argument("--text", required=True, action="append",
                    help="a sentence; give it several times to speak several in batches (then --out is a folder)")
    sy.add_argument("--split", action="store_true",
                    help="speak each sentence of the texts as its own clip (then --out is a folder)")
    sy.add_argument("--out", type=Path, required=True, help="the WAV, or with several --text or --split a folder of "
                                                            "NN.wav; <out>.json names the path used and each clip's text")
    sy.add_argument("--batch-size", type=positive_int, help="texts per forward pass (default "
                                                             "nbhelpers.vits.synth.DEFAULT_BATCH: 1, the fastest on CPU)")
    sy.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="auto (default: the fastest backend whose check passed when the bundle was published), torch "
                         "(weight norm folded), onnx (fp32 ONNX Runtime) or onnx-int8 (model.int8.onnx)")
    sy.add_argument("--onnx", action="store_const", const="onnx", dest="backend", help="same as --backend onnx")
    qu = sub.add_parser("quantize", help="add the int8 ONNX variant (model.int8.onnx) to a published bundle")
    add_stage_arguments(qu)
    qu.add_argument("--bundle", type=Path, help="bundle folder (default: newest under <workspace>/vits/model)")
    args = parser.parse_args(argv)

    from ..paths import Workspace

    ws = Workspace(args.workspace)
    if args.command in ("train", "finish"):  # workspace checked first; a failure is recorded as failed
        from ..training import run_guarded
        from . import STAGE

        return run_guarded(STAGE, args.profile, ws, lambda: _dispatch(args, ws))
    return _dispatch(args, ws)


def _dispatch(args: argparse.Namespace, ws) -> int:
    """Run the parsed command (pre-flight failures print their report and return 2)."""
    from .preflight import PreflightError

    try:
        if args.command in ("synth", "quantize"):
            return _bundle_command(args, ws)
        if args.command == "finish":
            return _finish_command(args, ws)
        from .train import finish, prepare, train

        params = _params(args)
        if getattr(args, "resume_session", False):
            return _resume_session(args, params, ws)
        prep = prepare(params, ws, dataset_dir=args.dataset_dir, restore_path=args.restore_path,
                       resume=not args.no_resume)
        if args.command == "preflight":
            return 0
        result = train(prep, record=args.no_finish)  # finish() writes the stage record otherwise
        if not args.no_finish:
            out = finish(result, params, ws, dataset_dir=prep.dataset_dir)
            _print_summary(out)
            return _checks_exit(out["metrics"], out["outputs"])
        return 0
    except PreflightError as e:
        from .report import write_preflight

        print(e, file=sys.stderr)
        print(f"pre-flight report: {write_preflight(ws, e.report)}", file=sys.stderr)
        return 2


def _resume_session(args: argparse.Namespace, params: dict, ws) -> int:
    """The smoke notebook's "session 2": continue the newest run for ``resume_steps`` more steps."""
    from ..budget import TimeBudget
    from ..coqui_runs import checkpoint_step
    from .train import prepare, resumable_checkpoint, train

    prep = prepare(params, ws, dataset_dir=args.dataset_dir)
    if prep.continue_dir is None:
        print("nothing to resume: no run with a checkpoint in the workspace (run `train --no-finish` first)",
              file=sys.stderr)
        return 2
    saved = checkpoint_step(resumable_checkpoint(prep.continue_dir))
    result = train(prep, max_steps=saved + params["resume_steps"],
                   budget=TimeBudget(params["resume_budget_seconds"]), record=True)
    if result.start_step <= saved:
        print(f"the step counter did not continue: saved at {saved}, restarted at {result.start_step}", file=sys.stderr)
        return 1
    print(f"resumed {result.run_dir.name}: steps {result.start_step} -> {result.end_step} ({result.status}); "
          f"optimizer, scheduler and step counter continued from checkpoint_{saved}.pth")
    return 0


def _finish_command(args: argparse.Namespace, ws) -> int:
    """Publish the newest training session written by `train` (its session.json)."""
    from .report import newest_session
    from .train import finish, load_session, runs_dir

    session = newest_session(runs_dir(ws))
    if session is None:
        print(f"no training session under {runs_dir(ws)}: run `python -m nbhelpers.vits train --no-finish` first",
              file=sys.stderr)
        return 2
    params = _params(args)
    dataset = None
    preflight = ws.stage_dir("vits") / "preflight.json"
    if preflight.is_file():
        dataset = json.loads(preflight.read_text(encoding="utf-8")).get("dataset")
    out = finish(load_session(session), params, ws, dataset_dir=dataset)
    _print_summary(out)
    return _checks_exit(out["metrics"], out["outputs"])


def _print_summary(out: dict) -> None:
    """What was published (the full metrics are in the stage record and timing.json)."""
    o, m = out["outputs"], out["metrics"]
    print(f"published {o['bundle']} (steps {m['start_step']} -> {m['end_step']}, {m['stop_reason']}); "
          f"samples {o['samples']}; loss plot {o['loss_plot']}")
    if "timing_markdown" in o:
        speed = ", ".join(f"{k}: {m[k]:.2f}x" for k in ("onnx_speedup", "onnx_int8_speedup") if k in m)
        print(f"CPU timing vs PyTorch ({speed}): {o['timing_markdown']}")


def _checks_exit(metrics: dict, outputs: dict) -> int:
    """Exit 3 when the ONNX checks failed (everything is written first, so the table can be inspected)."""
    from .report import failed_checks

    failed = failed_checks(metrics)
    if failed:
        print(f"backend check(s) failed: {', '.join(failed)}: {[metrics[k] for k in failed]}; "
              f"see {outputs.get('timing_markdown')}", file=sys.stderr)
        return 3
    return 0


def _bundle_command(args: argparse.Namespace, ws) -> int:
    """synth or quantize on the given bundle, or the newest published one."""
    import soundfile as sf

    from ..records import read_records
    from .config import SAMPLE_RATE
    from .export import latest_bundle
    from .synth import VitsSynth, split_sentences

    texts = ([s for t in args.text for s in split_sentences(t)] if args.split else args.text) \
        if args.command == "synth" else []
    bundle = args.bundle or latest_bundle(ws)
    if bundle is None:
        print(f"no published VITS model under {ws.root / 'vits' / 'model'}: train first", file=sys.stderr)
        return 2
    try:
        if args.command == "quantize":
            from .export import quantize_bundle

            print(f"wrote {quantize_bundle(bundle)}")
            return 0
        synth = VitsSynth.from_bundle(bundle, args.backend, records=read_records(ws), batch_size=args.batch_size)
        audios = synth.synthesize(texts)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    folder = len(audios) > 1 or args.split
    outs = [args.out / f"{i:02d}.wav" for i in range(len(audios))] if folder else [args.out]
    outs[0].parent.mkdir(parents=True, exist_ok=True)
    for out, audio in zip(outs, audios, strict=True):
        sf.write(out, audio, SAMPLE_RATE)
    info = {"bundle": str(bundle), "synthesis_path": synth.describe(), "synthesis": synth.report(),
            "clips": {o.name: t for o, t in zip(outs, texts, strict=True)}}  # file name -> its text
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(info, ensure_ascii=False, indent=1),
                                                           encoding="utf-8")
    seconds = sum(len(a) for a in audios) / SAMPLE_RATE
    print(f"wrote {args.out} ({seconds:.2f} s) from {bundle} with {synth.backend}: {synth.why} "
          f"(batch {synth.batch_size}, {synth.device})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
