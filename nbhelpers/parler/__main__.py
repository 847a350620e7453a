"""Command line for stage 02 (Parler-TTS fine-tune, Kannada), on the parler stack. Notebook 02 runs each step
as one of these commands in a child process and shows the files they write.

Examples:
  python -m nbhelpers.parler plan --profile smoke                     # settings + memory plan -> parler/run/plan.json
  python -m nbhelpers.parler coverage --profile smoke                 # -> parler/run/coverage.json
  python -m nbhelpers.parler encode --profile kaggle-t4               # codes only (session 1); train reuses them
  python -m nbhelpers.parler train --profile smoke                    # resumes the run when a checkpoint exists
  python -m nbhelpers.parler train --profile kaggle-t4 --mode lora
  accelerate launch --multi_gpu --num_processes 2 -m nbhelpers.parler train --profile kaggle-t4   # Kaggle T4 x2
  python -m nbhelpers.parler train --profile smoke --set max_steps=20 --set learning_rate=1e-3
  python -m nbhelpers.parler speak --profile smoke --text "ನಮಸ್ಕಾರ" --out hello.wav   # newest export speaks
  python -m nbhelpers.parler init --text-encoder google/flan-t5-large --codec parler-tts/dac_44khZ_8kbps \\
      --tokenizer my_tokenizer/ --out new_parler/                   # a new model for a new tokenizer
  python -m nbhelpers.parler push --repo-id you/kannada-parler --private   # newest export + card to the hub (HF_TOKEN)
"""

from __future__ import annotations

import argparse
import sys

from ..cli import (
    add_stage_arguments,
    add_training_arguments,
    budget_from_args,
    non_negative_int,
    positive_float,
    positive_int,
)


def _config(args: argparse.Namespace) -> dict:
    from ..cli import parse_overrides
    from ..profiles import load_profile

    overrides = parse_overrides(args.set)
    for key in ("mode", "model", "max_steps"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    return load_profile("parler", args.profile, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.parler", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("plan", "settings, precision, processes and the memory plan (no model is loaded)"),
                       ("coverage", "check that the prompt tokenizer represents the training transcripts"),
                       ("encode", "only encode the dataset's audio codes into the workspace's code cache (a "
                                  "Kaggle session can encode, the next one train)"),
                       ("train", "coverage check, train or resume, export and stage record"),
                       ("speak", "speak one sentence with a stage-02 export (the notebook's Try it)")):
        p = sub.add_parser(name, help=text)
        add_stage_arguments(p, dataset_help="prepared dataset name or a saved DatasetDict folder (default: profile's)")
        p.add_argument("--run", default="run", help="run name: its folder is <workspace>/parler/<run>")
        if name != "speak":
            p.add_argument("--model", help="tiny, indic, mini-v1, a hub id or a local folder (default: profile's)")
        if name in ("plan", "train"):
            p.add_argument("--mode", choices=("full", "lora", "8bit", "4bit"))
            p.add_argument("--max-steps", type=positive_int)
        if name == "train":
            add_training_arguments(p)
        if name == "speak":
            p.add_argument("--text", required=True, help="the Kannada sentence")
            p.add_argument("--description", help="voice description (default: the profile's sample_description)")
            p.add_argument("--export", help="model folder (default: the newest parler/<run>/export)")
            p.add_argument("--out", help="WAV to write (default: <workspace>/parler/<run>/try_it/speak.wav)")
            p.add_argument("--seed", type=non_negative_int, default=0)
            p.add_argument("--max-seconds", type=positive_float, help="longest audio (default: 2 x sample_max_seconds)")
            p.add_argument("--stream-dir", help="also write the audio chunk by chunk as it is generated into this "
                                                "folder (chunk_0000.wav ...; the notebook player plays them)")
    push = sub.add_parser("push", help="upload the newest finished export with a generated model card (needs HF_TOKEN)")
    add_stage_arguments(push)
    from .hub import add_push_arguments

    add_push_arguments(push)
    init = sub.add_parser("init", help="a new Parler-TTS for a new prompt tokenizer: pretrained text encoder and codec, "
                                       "fresh decoder (upstream's dummy-model recipe); train it with --model <out>")
    init.add_argument("--text-encoder", required=True, help="T5-family hub id or folder (its tokenizer reads descriptions)")
    init.add_argument("--codec", required=True, help="codec hub id or folder, e.g. parler-tts/dac_44khZ_8kbps")
    init.add_argument("--tokenizer", required=True, help="the prompt tokenizer: a folder or hub id")
    init.add_argument("--out", required=True, help="new folder for the model (must be empty or absent)")
    from .model import DecoderSize

    for field, default in vars(DecoderSize()).items():
        init.add_argument(f"--decoder-{field.replace('_', '-')}", type=positive_int, default=default, dest=field,
                          help=f"fresh decoder's {field.replace('_', ' ')} (default {default}, parler-tts-mini-v1's)")
    init.add_argument("--seed", type=non_negative_int, default=0)
    args = parser.parse_args(argv)
    if args.command == "init":
        return _init(args)

    from ..paths import Workspace
    from . import stage

    cfg = _config(args)
    ws = Workspace(args.workspace)
    if args.command == "push":
        from .hub import run_push
        from .train import STAGE

        return run_push(STAGE, args, cfg["hub_license"])
    if args.command == "train":
        from ..training import run_guarded
        from .train import STAGE

        return run_guarded(STAGE, cfg["profile"], ws, lambda: _train(args, cfg, ws))
    paths = stage.run_paths(ws, args.run)
    if args.command == "plan":
        from ..env import gpu_info
        from ..records import write_json
        from .report import plan
        from .train import mixed_precision

        info = plan(cfg, precision=mixed_precision(cfg["mixed_precision"]), gpus=len(gpu_info()))
        path = write_json(paths.run_dir / stage.PLAN_FILE, info)
        print(f"profile {info['profile']} | mode {info['mode']} | model {info['model']} | precision "
              f"{info['precision']} | {info['processes_expected']} process(es), effective batch "
              f"{info['effective_batch_expected']}" + (f"\nNOTE: {info['note']}" if info["note"] else ""))
        print(f"wrote {path}")
        return 0
    if args.command == "encode":
        info = stage.encode(cfg, workspace=ws, dataset=args.dataset)
        for name, d in info["datasets"].items():
            print(f"{name}: {d['splits']} rows encoded or reused -> {d['folder']}")
        return 0
    if args.command == "coverage":
        report, path = stage.write_coverage(cfg, workspace=ws, dataset=args.dataset, run=args.run)
        print(f"prompt tokenizer: {report['unknown_share']:.2%} unknown tokens, {report['byte_fallback_share']:.2%} "
              f"byte fallback, {report['tokens_per_char']:.2f} tokens/character, {report['not_round_trip']} of "
              f"{report['texts']} texts do not decode back")
        print(f"wrote {path}")
        return 0
    out = args.out or paths.run_dir / stage.TRY_DIR / "speak.wav"  # speak
    info = stage.speak(cfg, text=args.text, description=args.description, export=args.export, out=out,
                       workspace=ws, seed=args.seed, max_seconds=args.max_seconds, stream_dir=args.stream_dir)
    print(f"{info['audio_seconds']} s of audio in {info['generation_seconds']} s from {info['model']} "
          f"({info['synthesis_path']})")
    print(f"wrote {info['wav']}")
    return 0


def _init(args: argparse.Namespace) -> int:
    """`init`: build and save the new model, then say what it holds and how to train it."""
    import json

    from .model import SOURCE_FILE, DecoderSize, init_model

    size = DecoderSize(**{k: getattr(args, k) for k in vars(DecoderSize())})
    out = init_model(args.text_encoder, args.codec, args.tokenizer, args.out, size=size, seed=args.seed)
    recipe = json.loads((out / SOURCE_FILE).read_text())["init"]
    print(f"{recipe['parameters'] / 1e6:.1f} M parameters: text encoder {args.text_encoder}, codec {args.codec} "
          f"({recipe['codebooks']} codebooks x {recipe['codebook_size']}), fresh {size.layers}-layer decoder, prompt "
          f"vocabulary {recipe['prompt_vocab']}")
    print(f"wrote {out} (recipe in {SOURCE_FILE}); train it: python -m nbhelpers.parler train --model {out}")
    return 0


def _train(args: argparse.Namespace, cfg: dict, ws) -> int:
    """`train`: coverage, train or resume, export and record; prints a short summary on the main process."""
    from . import stage

    result, outputs = stage.run_stage(cfg, workspace=ws, dataset=args.dataset, run=args.run,
                                      budget=budget_from_args(args), stop_after=args.stop_after)
    if outputs:  # the main process: a short summary (the stage record in run_log.jsonl has everything)
        m = result.metrics
        print(f"status {result.status} at step {result.step}/{m['max_steps']}: {m['processes']} process(es), "
              f"effective batch {m['effective_batch']} ({m['batch_size']} per device x {m['processes']} x "
              f"{m['grad_accum']} accumulation); final loss {m.get('final_loss', float('nan')):.4f}, validation "
              f"{m.get('final_eval_loss', float('nan')):.4f}; {m['seconds_per_step'] or '-'} s/step this session")
        print(f"model: {outputs.get('export', 'not exported yet (resume_needed)')}")
        print(f"stage record appended to {ws.run_log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
