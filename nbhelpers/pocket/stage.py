"""Stage 07 end to end, the same for the notebook and the command line: tokenizer (one per language, merged),
model, cached latents, training (or resuming), export, samples from fixed sentences with a voice prompt, the
test-split evaluation, and the stage record."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..budget import TimeBudget
from ..checkpoint import out_of_space, swap_in
from ..paths import Workspace
from ..records import append_stage_record
from . import STAGE
from .latents import Item, build_items, load_or_encode, read_manifest
from .model import TINY, build_model, load_finetuned, parameter_counts, synthesize
from .tokenizer import coverage_report, merge_sentencepiece, train_sentencepiece
from .train import PACKAGE_CHECKPOINT, RunPaths, TrainResult, train


@dataclass
class Language:
    """One language of a run: its code ("" in a one-language run), prepared dataset, sampling weight, vocabulary
    size, and its manifests (the test manifest may be absent)."""

    code: str
    dataset: str
    weight: float
    vocab_size: int
    train: Path
    validation: Path
    test: Path


def languages(cfg: dict[str, Any], workspace: Workspace, dataset: str | None = None) -> list[Language]:
    """The run's languages: the profile's ``languages`` table, or (when it is empty) ``dataset`` (default the
    profile's) with ``vocab_size``; a bad entry is named with the fix."""
    table = cfg["languages"]
    if not table:
        train, val = manifest_paths(cfg, workspace, dataset)
        return [Language("", str(dataset or cfg["dataset"]), 1.0, cfg["vocab_size"], train, val,
                         train.with_name("test.json"))]
    if dataset:
        raise ValueError(f"--dataset {dataset} names one dataset, but the profile trains the languages "
                         f"{', '.join(table)} (its `languages` table): drop --dataset, or --set languages={{}}")
    out = []
    for code, entry in table.items():
        fix = (f'write languages.{code} as {{"dataset": "<prepared name or folder>", "weight": <number > 0>, '
               f'"vocab_size": <int >= 2>}}')
        if not isinstance(entry, dict) or set(entry) != {"dataset", "weight", "vocab_size"}:
            raise ValueError(f"pocket setting languages.{code} = {entry!r}: {fix}")
        weight, vocab = entry["weight"], entry["vocab_size"]
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not weight > 0 \
                or not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 2 or not isinstance(entry["dataset"], str):
            raise ValueError(f"pocket setting languages.{code} = {entry!r}: {fix}")
        train, val = manifest_paths(cfg, workspace, entry["dataset"])
        out.append(Language(str(code), entry["dataset"], float(weight), vocab, train, val, train.with_name("test.json")))
    return out


@dataclass
class Prepared:
    """Everything training needs, built once: tokenizer, model, items and reports."""

    paths: RunPaths
    tokenizer: Path
    coverage: dict[str, Any]
    validation_coverage: dict[str, Any]
    tts_model: Any
    config_path: Path
    train_items: list[Item]
    dropped: list[str]
    voice_prompt: Path
    manifest: Path
    latent_cache: Path
    val_items: list[Item] = field(default_factory=list)
    languages: list[Language] = field(default_factory=list)


def manifest_paths(cfg: dict[str, Any], workspace: Workspace, dataset: str | None = None) -> tuple[Path, Path]:
    """(train, validation) pocket manifests of the prepared dataset (a name, or a folder holding train.json)."""
    name = dataset or cfg["dataset"]
    folder = Path(name)
    if (folder / "train.json").is_file():
        return folder / "train.json", folder / "validation.json"
    from ..data.layout import DatasetPaths

    paths = DatasetPaths.find(str(name), workspace)
    return paths.pocket_manifest("train"), paths.pocket_manifest("validation")


def prepare(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: str | None = None,
            run: str = "run") -> Prepared:
    """Tokenizer from the training transcripts (one per language with its own vocabulary size, merged), the model
    (tiny random or released + new text embedding), Mimi latents encoded once and cached, and the training and
    validation items, grouped by language."""
    ws = workspace or Workspace()
    paths = RunPaths(ws.stage_dir("pocket"), run)
    langs = languages(cfg, ws, dataset)
    rows, val_rows, codes, val_codes = [], [], [], []
    for lang in langs:
        mine = read_manifest(lang.train)
        theirs = read_manifest(lang.validation) if lang.validation.is_file() else []
        rows += mine
        val_rows += theirs
        codes += [lang.code] * len(mine)
        val_codes += [lang.code] * len(theirs)
    texts = [r["text"] for r in rows]
    if len(langs) == 1:
        tok = train_sentencepiece(texts, paths.tokenizer_dir, langs[0].vocab_size)
    else:
        own = []
        for lang in langs:
            try:
                own.append(train_sentencepiece([r["text"] for r, c in zip(rows, codes, strict=True) if c == lang.code],
                                               paths.tokenizer_dir / lang.code, lang.vocab_size))
            except ValueError as err:
                raise ValueError(f"pocket setting languages.{lang.code} ({lang.train}): {err}") from err
        tok = merge_sentencepiece(own, paths.tokenizer_dir / "tokenizer.model")
    coverage = coverage_report(tok, texts)
    val_cov = coverage_report(tok, [r["text"] for r in val_rows]) if val_rows else {}
    if coverage["unknown_token_share"] > 0:
        raise ValueError(f"the new tokenizer cannot represent characters of its own transcripts: "
                         f"{coverage['missing_characters']}")
    from ..profiles import load_profile

    seed = load_profile("suite", cfg["profile"])["seed"]
    tts, config_path = build_model(cfg["model"], tok, coverage["vocab_size"], paths.config, seed=seed,
                                   flow_type=cfg["flow_type"])
    stats = "data" if cfg["model"] == TINY else "model"
    latents, cache = load_or_encode(tts, rows, paths.latents, stats=stats, split="train")
    max_frames = int(cfg["max_audio_seconds"] * tts.config.mimi.frame_rate)
    items, dropped = build_items(tts, rows, latents, max_frames=max_frames, languages=codes)
    val_items: list[Item] = []
    if val_rows and cfg["val_every"] > 0:  # normalised with the training statistics, cached on their own
        val_latents, _ = load_or_encode(tts, val_rows, paths.latents, stats="model", split="validation")
        val_items, _ = build_items(tts, val_rows, val_latents, max_frames=max_frames, languages=val_codes)
    voice = Path(cfg["sample_voice"]) if cfg["sample_voice"] else Path((val_rows or rows)[0]["audio_path"])
    return Prepared(paths, tok, coverage, val_cov, tts, config_path, items, dropped, voice, langs[0].train, cache,
                    val_items, langs)


def export(prep: Prepared, result: TrainResult) -> dict[str, Path]:
    """Copy the newest checkpoint in the package format with its config and tokenizer into ``export/``
    (the config is rewritten to point at the copied tokenizer)."""
    import yaml

    from .model import write_config

    out = prep.paths.export
    tmp = out.with_name(out.name + ".tmp")  # written aside and swapped in: a kill never leaves a half export
    shutil.rmtree(tmp, ignore_errors=True)
    with out_of_space("the export", tmp, cleanup=tmp, checkpoints=prep.paths.checkpoints):
        tmp.mkdir(parents=True)
        shutil.copy2(prep.tokenizer, tmp / "tokenizer.model")
        cfg = yaml.safe_load(prep.config_path.read_text(encoding="utf-8"))
        cfg["flow_lm"]["lookup_table"]["tokenizer_path"] = str((out / "tokenizer.model").resolve())
        write_config(cfg, tmp / "model.yaml")
        shutil.copy2(result.checkpoint / PACKAGE_CHECKPOINT, tmp / "model.pt")
        swap_in(tmp, out)
    return {"config": out / "model.yaml", "checkpoint": out / "model.pt", "tokenizer": out / "tokenizer.model"}


def run_stage(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: str | None = None, run: str = "run",
              budget: TimeBudget | None = None, stop_after: int | None = None,
              prepared: Prepared | None = None) -> tuple[TrainResult, dict[str, Any]]:
    """Prepare (or reuse ``prepared``), train/resume, export, synthesise samples, append the stage record."""
    from accelerate import PartialState

    from ..samples import sample_row, write_samples, write_wav
    from .report import plot_losses, write_prepare_outputs

    ws = workspace or Workspace()
    state = PartialState(cpu=not torch.cuda.is_available())
    if prepared is not None:
        prep = prepared
    else:  # the main process trains the tokenizer and fills the latent cache; the others then reuse them
        with state.main_process_first():
            prep = prepare(cfg, workspace=ws, dataset=dataset, run=run)
    result = train(cfg, prep.tts_model, prep.train_items, paths=prep.paths, budget=budget, stop_after=stop_after,
                   workspace=ws, val_items=prep.val_items)
    outputs: dict[str, Any] = {}
    if not state.is_main_process:
        return result, outputs
    outputs.update(export(prep, result))
    outputs.update(write_prepare_outputs(prep, cfg))
    model = load_finetuned(outputs["config"], outputs["checkpoint"], temp=cfg["sample_temperature"],
                           eos_threshold=cfg["sample_eos_threshold"])
    sentences = list(cfg["sample_sentences"])
    audios = synthesize(model, sentences, prep.voice_prompt, seed=result.metrics["seed"])
    wavs = [write_wav(prep.paths.samples / f"sample_{i}.wav", audio, model.sample_rate)
             for i, audio in enumerate(audios)]
    model_state = f"after {result.step} steps" + (" from random weights" if cfg["model"] == TINY else
                                                   f" fine-tuned from {cfg['model']}")
    outputs["samples"] = write_samples([sample_row(text, wav, model_state, voice=str(prep.voice_prompt))
                                        for text, wav in zip(sentences, wavs, strict=True)], prep.paths.samples)
    outputs["voice_prompt"] = prep.voice_prompt
    outputs["history"] = prep.paths.history
    outputs["tensorboard"] = prep.paths.tensorboard
    evaluation = None
    if cfg["eval_items"] > 0:
        from ..records import write_json
        from .evaluate import evaluate

        evaluation = evaluate(model, prep.languages, cfg, out_dir=prep.paths.run_dir / "eval",
                              seed=result.metrics["seed"])
        outputs["evaluation"] = write_json(prep.paths.evaluation, evaluation)
    if result.history:
        outputs["loss_plot"] = plot_losses(result.history, prep.paths.run_dir / "losses.png")
    h = result.history
    k = max(1, min(10, len(h) // 5))
    metrics = {**result.metrics, **parameter_counts(prep.tts_model),
               "first_loss": float(np.mean([e["loss"] for e in h[:k]])) if h else None,
               "final_loss": float(np.mean([e["loss"] for e in h[-k:]])) if h else None,
               "vocab_size": prep.coverage["vocab_size"], "tokens_per_char": prep.coverage["tokens_per_char"],
               "validation_character_coverage": prep.validation_coverage.get("character_coverage"),
               "dropped_too_long": len(prep.dropped),
               "sample_seconds": [round(len(a) / model.sample_rate, 2) for a in audios]}
    if evaluation is not None:
        metrics["eval"] = {"success_rate": evaluation["success_rate"],
                           **{code: {k: e[k] for k in ("success_rate", "cer")} for code, e in evaluation["languages"].items()}}
    result.metrics = metrics
    tmp = prep.paths.run_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=1, default=str))
    tmp.replace(prep.paths.run_dir / "metrics.json")
    outputs["metrics"] = prep.paths.run_dir / "metrics.json"
    append_stage_record(STAGE, profile=cfg["profile"], status=result.status, workspace=ws,
                        inputs={"manifest": prep.manifest, "model": cfg["model"], "latent_cache": prep.latent_cache,
                                "voice_prompt": prep.voice_prompt,
                                **({"languages": {lang.code: lang.train for lang in prep.languages}}
                                   if len(prep.languages) > 1 else {})},
                        outputs={k: v for k, v in outputs.items()}, metrics=metrics)
    return result, outputs
