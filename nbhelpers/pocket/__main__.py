"""Command line for stage 07 (Pocket TTS fine-tune to a new language), on the main stack.

Examples:
  python -m nbhelpers.pocket tokenizer --profile smoke              # train the SentencePiece model, print coverage
  python -m nbhelpers.pocket prepare --profile smoke                # tokenizer, model, latents: <run>/prepare.json
  python -m nbhelpers.pocket train --profile smoke                  # resumes the run when a checkpoint exists
  python -m nbhelpers.pocket train --profile kaggle-t4 --dataset kn_slr79
  accelerate launch --num_processes 2 -m nbhelpers.pocket train --profile kaggle-t4   # Kaggle T4 x2
  python -m nbhelpers.pocket train --profile smoke --set max_steps=40 --set flow_type=flow_matching
  python -m nbhelpers.pocket train --profile smoke --set grad_accum=4 --set batch_size=2 --set val_every=10
  python -m nbhelpers.pocket train --profile smoke --set 'languages={"kn": {"dataset": "kn_smoke", "weight": 0.7,
      "vocab_size": 300}, "bn": {"dataset": "bn_smoke", "weight": 0.3, "vocab_size": 300}}'
  python -m nbhelpers.pocket speak --config <run>/export/model.yaml --checkpoint <run>/export/model.pt \\
      --voice prompt.wav --out out.wav "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ."
  python -m nbhelpers.pocket speak --out out.wav --stream-dir chunks/ "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ."   # the run's export, streamed
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import (
    add_stage_arguments,
    add_training_arguments,
    budget_from_args,
    non_negative_float,
    non_negative_int,
    parse_overrides,
    positive_int,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.pocket", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("tokenizer", "train the new-language SentencePiece model and report its coverage"),
                       ("prepare", "tokenizer, model and cached latents; writes <run>/prepare.json and lengths.png"),
                       ("train", "tokenizer, model, cached latents, train or resume, export, samples, record")):
        p = sub.add_parser(name, help=text)
        add_stage_arguments(p, dataset_help="prepared dataset name or a folder with train.json (default: profile's)")
        p.add_argument("--run", default="run", help="run name: its folder is <workspace>/pocket/<run>")
        if name == "train":
            p.add_argument("--model", help="tiny, or an LSD-head packaged config name such as english")
            p.add_argument("--max-steps", type=positive_int)
            add_training_arguments(p)
    speak = sub.add_parser("speak", help="synthesise with a fine-tuned checkpoint through the package loader")
    add_stage_arguments(speak)
    speak.add_argument("--run", default="run", help="run whose export/ is used when --config/--checkpoint are not given")
    speak.add_argument("--config", type=Path, help="model.yaml (default: <workspace>/pocket/<run>/export/model.yaml)")
    speak.add_argument("--checkpoint", type=Path, help="model.pt (default: beside the default config)")
    speak.add_argument("--voice", type=Path, help="voice prompt wav (default: the run's, from its prepare.json)")
    speak.add_argument("--out", type=Path, required=True)
    speak.add_argument("--stream-dir", type=Path, help="also write the audio chunk by chunk as it is generated into "
                                                       "this folder (chunk_0000.wav ...), for a notebook to play")
    speak.add_argument("--temperature", type=non_negative_float, default=0.3)
    speak.add_argument("--seed", type=non_negative_int, default=0)
    speak.add_argument("text")
    args = parser.parse_args(argv)

    if args.command == "speak":
        import numpy as np

        from ..paths import Workspace
        from ..samples import write_wav
        from .model import load_finetuned, synthesize
        from .train import RunPaths

        paths = RunPaths(Workspace(args.workspace).stage_dir("pocket"), args.run)
        config = args.config or paths.export / "model.yaml"
        checkpoint = args.checkpoint or config.parent / "model.pt"
        voice = args.voice
        if voice is None and (paths.run_dir / "prepare.json").is_file():
            voice = Path(json.loads((paths.run_dir / "prepare.json").read_text(encoding="utf-8"))["voice_prompt"])
        missing = [str(p) for p in (config, checkpoint, voice) if p is None or not Path(p).is_file()]
        if missing:
            print(f"not found: {', '.join(missing)} (None: no voice prompt). Fix: train first "
                  "(python -m nbhelpers.pocket train) or pass --config/--checkpoint/--voice", file=sys.stderr)
            return 2
        from ..profiles import load_profile

        eos = load_profile("pocket", args.profile, parse_overrides(args.set))["sample_eos_threshold"]
        model = load_finetuned(config, checkpoint, temp=args.temperature, eos_threshold=eos)
        info: dict = {"wav": str(args.out)}
        if args.stream_dir is not None:  # the same utterance as below, written chunk by chunk as it is decoded
            from .stream import PocketStream

            speaker = PocketStream(model, voice)
            parts = []
            for part in speaker.stream(args.text, seed=args.seed):
                write_wav(args.stream_dir / f"chunk_{len(parts):04d}.wav", part, model.sample_rate)
                parts.append(part)
            audio = np.concatenate(parts)
            info.update(chunks=len(parts), first_audio_seconds=round(speaker.timing.first_audio_s, 3),
                        generation_seconds=round(speaker.timing.total_s, 3))
        else:
            audio = synthesize(model, [args.text], voice, seed=args.seed)[0]
        write_wav(args.out, audio, model.sample_rate)
        info["seconds"] = round(len(audio) / model.sample_rate, 2)
        args.out.with_name(args.out.name + ".json").write_text(json.dumps(info), encoding="utf-8")
        print(json.dumps(info))
        return 0

    from ..paths import Workspace
    from ..profiles import load_profile

    overrides = parse_overrides(args.set)
    for key in ("model", "max_steps"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    cfg = load_profile("pocket", args.profile, overrides)
    ws = Workspace(args.workspace)
    if args.command == "tokenizer" and cfg["languages"]:
        print("the profile trains several languages (its `languages` table): `prepare` trains and merges their "
              "tokenizers and writes the coverage to <run>/prepare.json", file=sys.stderr)
        return 2
    if args.command == "tokenizer":
        from .latents import read_manifest
        from .stage import manifest_paths
        from .tokenizer import coverage_report, train_sentencepiece
        from .train import RunPaths

        train_manifest, _ = manifest_paths(cfg, ws, args.dataset)
        texts = [r["text"] for r in read_manifest(train_manifest)]
        tok = train_sentencepiece(texts, RunPaths(ws.stage_dir("pocket"), args.run).tokenizer_dir, cfg["vocab_size"])
        print(json.dumps({"tokenizer": str(tok), **coverage_report(tok, texts)}, ensure_ascii=False, indent=1))
        return 0
    if args.command == "prepare":
        from .report import write_prepare_outputs
        from .stage import prepare

        prep = prepare(cfg, workspace=ws, dataset=args.dataset, run=args.run)
        written = write_prepare_outputs(prep, cfg)
        cov = prep.coverage
        print(f"vocabulary: {cov['vocab_size']} pieces (asked {cfg['vocab_size']}); {len(prep.train_items)} training "
              f"items, {len(prep.dropped)} left out as too long; latent cache {prep.latent_cache}")
        print("wrote " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in written.items()))
        return 0
    from ..training import run_guarded
    from . import STAGE

    return run_guarded(STAGE, cfg["profile"], ws, lambda: _train(args, cfg, ws))


def _train(args: argparse.Namespace, cfg: dict, ws) -> int:
    """`train`: prepare, train or resume, export, samples and record; prints a summary on the main process."""
    from .stage import run_stage

    result, outputs = run_stage(cfg, workspace=ws, dataset=args.dataset, run=args.run, budget=budget_from_args(args),
                                stop_after=args.stop_after)
    if outputs:  # the main process: everything else is in the stage record and <run>/metrics.json
        m = result.metrics
        loss = (f"loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}" if m.get("first_loss") is not None
                else "no step run")
        val = f", validation loss {m['final_val_loss']:.3f}" if m.get("final_val_loss") is not None else ""
        rate = (m.get("eval") or {}).get("success_rate")
        evaluated = f"; held-out success rate {rate:.0%} ({outputs['evaluation']})" if rate is not None else ""
        print(f"{result.status} at step {result.step}: {m['processes']} process(es) x {m['grad_accum']} micro-batch(es), "
              f"effective batch {m['effective_batch']}, {loss}{val}; exported "
              f"{outputs['checkpoint']}; samples {outputs['samples']}{evaluated}; metrics {outputs['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
