"""Command line for stage 03 (distil the fine-tuned Parler-TTS into a smaller Kannada-only student), on the
parler stack.

Notebook 03 runs `plan` and `run` in child processes and shows the files they write into
<workspace>/distill/<run>/ (listed in the stage record's outputs).

Examples:
  python -m nbhelpers.distill plan --profile smoke --teacher tiny       # settings, layer map -> distill/run/plan.json
  python -m nbhelpers.distill run --profile smoke                       # resumes the run when a checkpoint exists
  python -m nbhelpers.distill run --profile kaggle-t4 --set student_decoder_layers=4
  accelerate launch --multi_gpu --num_processes 2 -m nbhelpers.distill run --profile kaggle-t4   # Kaggle T4 x2
  python -m nbhelpers.distill mapping 24 5
  python -m nbhelpers.distill push --repo-id you/kannada-parler-student   # newest student + card to the hub (HF_TOKEN)
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import add_stage_arguments, add_training_arguments, budget_from_args, parse_overrides, positive_int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mapping", help="which teacher layers a student of N layers copies")
    m.add_argument("teacher_layers", type=positive_int)
    m.add_argument("student_layers", type=positive_int)
    for name, text in (("plan", "build the initial student and print the architecture diff (no training)"),
                       ("run", "distil (or resume), export the student, compare with the teacher, record")):
        p = sub.add_parser(name, help=text)
        add_stage_arguments(p, dataset_help="prepared dataset name or a saved DatasetDict folder (default: profile's)")
        p.add_argument("--teacher", help="auto (stage 02 export), tiny, indic, a hub id or a model folder")
        if name == "run":
            add_training_arguments(p)
    push = sub.add_parser("push", help="upload the newest finished student with a generated model card (needs HF_TOKEN)")
    add_stage_arguments(push)
    from ..parler.hub import add_push_arguments

    add_push_arguments(push)
    args = parser.parse_args(argv)

    if args.command == "mapping":
        from .student import layer_mapping

        print(json.dumps({"teacher_layers": args.teacher_layers,
                          "student_from_teacher": layer_mapping(args.teacher_layers, args.student_layers)}))
        return 0

    from ..paths import Workspace
    from ..profiles import load_profile

    overrides = parse_overrides(args.set)
    if getattr(args, "teacher", None):
        overrides["teacher"] = args.teacher
    if getattr(args, "dataset", None):
        overrides["dataset"] = args.dataset
    params = load_profile("distill", args.profile, overrides)
    ws = Workspace(args.workspace)
    if args.command == "push":
        from ..parler.hub import run_push
        from .train import STAGE

        return run_push(STAGE, args, params["hub_license"])
    if args.command == "plan":
        from .pipeline import write_plan

        path = write_plan(params, workspace=ws)
        arch = json.loads(path.read_text(encoding="utf-8"))["architecture"]
        print(f"teacher: {arch['teacher_source']} | student decoder layers copied from teacher layers "
              f"{[row['copied from teacher layer'] for row in arch['layers']]} | prompt vocabulary "
              f"{arch['prompt_vocab']['teacher']} -> {arch['prompt_vocab']['student']} ids")
        print(f"wrote {path}")
        return 0
    from ..training import run_guarded
    from .train import STAGE

    return run_guarded(STAGE, params["profile"], ws, lambda: _run(args, params, ws))


def _run(args: argparse.Namespace, params: dict, ws) -> int:
    """`run`: distil (or resume), export, compare, record; prints a short summary on the main process."""
    from ..parler.train import process_state
    from .pipeline import run

    out = run(params, workspace=ws, budget=budget_from_args(args), stop_after=args.stop_after)

    if not process_state().is_main_process:
        return 0
    m = out.metrics  # a short summary: the stage record in run_log.jsonl and the run folder have everything
    print(f"status {out.status} at step {m.get('step')}/{m.get('max_steps')}: {m.get('processes')} process(es), "
          f"effective batch {m.get('effective_batch')} ({m.get('batch_size')} per device x {m.get('processes')} x "
          f"{m.get('grad_accum')} accumulation); final loss {m.get('final_loss', float('nan')):.4f}")
    if out.status == "done":
        from .report import headline

        for line in headline(out.comparison, params["profile"]):
            print(line)
        print(f"student: {out.student_dir}")
    print(f"stage record appended to {ws.run_log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
