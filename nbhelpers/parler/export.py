"""After training: merge LoRA adapters into the base, save a self-contained model folder (both tokenizers,
generation config, model card, before/after samples) and write the stage record."""

from __future__ import annotations

import json
import shutil
from typing import Any

import torch

from ..checkpoint import out_of_space, swap_in
from ..paths import Workspace
from ..records import append_stage_record
from ..samples import SAMPLES_FILE, write_samples
from .model import ParlerBundle, get_bundle, save_bundle
from .report import loss_summary, plot_curves, sample_rows
from .train import STAGE, TrainResult, generate_samples, parler_of, write_wavs


def merged_model(result: TrainResult, cfg: dict[str, Any]) -> torch.nn.Module:
    """A plain ParlerTTSForConditionalGeneration holding the trained weights (adapters merged; for a
    quantised base the adapters are merged into a freshly loaded full-precision copy of the same base)."""
    model = result.model
    if cfg["mode"] == "full":
        merged = parler_of(model)
    elif cfg["mode"] == "lora":
        merged = model.merge_and_unload()
    else:
        from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

        base = get_bundle(cfg["model"], workspace_dir=result.paths.base_models, seed=int(result.metrics["seed"]),
                          torch_dtype=torch.float32).model
        clean = get_peft_model(base, model.peft_config["default"])
        set_peft_model_state_dict(clean, {k: v.float().cpu() for k, v in get_peft_model_state_dict(model).items()})
        merged = clean.merge_and_unload()
    merged.config.use_cache = merged.config.decoder.use_cache = True
    if getattr(merged, "is_gradient_checkpointing", False):
        merged.gradient_checkpointing_disable()
    if "forward" in vars(merged.text_encoder):  # drop the fp32-autocast wrapper added for training
        del merged.text_encoder.forward
    return merged.eval()


def model_card(cfg: dict[str, Any], result: TrainResult, extra: dict[str, Any]) -> str:
    """A short README.md: what was trained on what, for how long, with which settings and losses."""
    h = result.history
    tenth = max(1, len(h) // 10)
    first = sum(x["loss"] for x in h[:tenth]) / tenth if h else float("nan")
    last = sum(x["loss"] for x in h[-tenth:]) / tenth if h else float("nan")
    keys = ("model", "mode", "max_steps", "max_epochs", "batch_size", "grad_accum", "learning_rate", "lr_schedule",
            "warmup_steps", "freeze_text_encoder", "gradient_checkpointing")
    settings = {k: cfg[k] for k in keys + (("lora_rank", "lora_alpha") if cfg["mode"] != "full" else ())}
    tiny = cfg["model"] == "tiny"
    return "\n".join([
        "---", "language: kn", "library_name: parler-tts", "tags: [text-to-speech, parler-tts, kannada]", "---", "",
        f"# Parler-TTS fine-tuned on `{extra.get('dataset', cfg['dataset'])}` (Kannada)", "",
        ("**Smoke run: a tiny model with random initial weights, trained for a few steps. It shows that the "
         "pipeline works; its audio is noise, not speech.**\n" if tiny else ""),
        f"- Base model: `{cfg['model']}`; trained in mode `{cfg['mode']}` (LoRA adapters merged into the weights)."
        if cfg["mode"] != "full" else f"- Base model: `{cfg['model']}`; full fine-tune of the decoder"
        f"{'' if cfg['freeze_text_encoder'] else ' and text encoder'}.",
        f"- Data: {result.metrics.get('train_utterances')} training utterances "
        f"({result.metrics.get('dropped_too_long', 0)} dropped as too long); dataset fingerprint "
        f"`{extra.get('data_fingerprint', '?')}`.",
        f"- Steps: {result.step}; train loss {first:.3f} (first 10 % of steps) -> {last:.3f} (last 10 %); "
        f"final validation loss {result.metrics.get('final_eval_loss', float('nan')):.3f}.",
        f"- Precision: {result.metrics.get('precision')}; processes: {result.metrics.get('processes')}; "
        f"peak memory {result.metrics.get('peak_memory_gib')} GiB.", "",
        "## Settings", "", "```json", json.dumps(settings, indent=1, ensure_ascii=False), "```", "",
        "## Use", "", "```python",
        "from parler_tts import ParlerTTSForConditionalGeneration",
        "from transformers import AutoTokenizer",
        "model = ParlerTTSForConditionalGeneration.from_pretrained(path)",
        "prompt_tok = AutoTokenizer.from_pretrained(path)",
        "description_tok = AutoTokenizer.from_pretrained(f'{path}/description_tokenizer')",
        "```", "",
        ("The tiny model's codec has custom widths: `import nbhelpers.parler` before loading it."
         if tiny else ""),
        "", "`samples/before_*.wav` and `samples/after_*.wav`: the same sentences and description before and "
        "after fine-tuning (fixed sampling seed).", ""])


def export(result: TrainResult, cfg: dict[str, Any], *, workspace: Workspace | None = None,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save the merged model, tokenizers, generation config, model card and samples to the run's
    ``export/`` folder (written to a temporary folder first, swapped in when complete)."""
    paths = result.paths
    merged = merged_model(result, cfg).to("cpu", torch.float32)
    bundle = ParlerBundle(merged, result.bundle.prompt_tokenizer, result.bundle.description_tokenizer,
                          result.bundle.source)
    tmp = paths.export.with_name("export.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with out_of_space("the export", tmp, cleanup=tmp, checkpoints=paths.checkpoints):
        save_bundle(bundle, tmp, extra={"base": cfg["model"], "mode": cfg["mode"], "steps": result.step})
        after = generate_samples(bundle, merged, list(cfg["sample_sentences"]), cfg["sample_description"],
                                 max_seconds=cfg["sample_max_seconds"], seed=int(result.metrics.get("seed", 0)),
                                 max_chars_per_second=cfg["sample_max_chars_per_second"])
        write_wavs(paths.samples, "after", after, bundle.sampling_rate)
        shutil.copytree(paths.samples, tmp / "samples")
        write_samples(sample_rows(cfg, tmp / "samples", result.step), tmp / "samples")
        (tmp / "README.md").write_text(model_card(cfg, result, extra or {}), encoding="utf-8")
        (tmp / "history.json").write_text(json.dumps(result.history))
        swap_in(tmp, paths.export)  # a kill never leaves a half-deleted export that stage 03 could take
    return {"export": paths.export, "samples": paths.export / "samples" / SAMPLES_FILE}


LOSS_CURVE_FILE = "loss_curve.png"


def finish(result: TrainResult, cfg: dict[str, Any], *, workspace: Workspace | None = None,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draw the loss curve, export when training is complete (with the before/after sample index), then append
    the stage record (``done`` or ``resume_needed``) listing every file notebook 02 shows."""
    paths = result.paths
    outputs: dict[str, Any] = {"run_dir": paths.run_dir, "checkpoints": paths.checkpoints,
                               "tensorboard": paths.tensorboard, "history": paths.history,
                               "loss_curve": plot_curves(result.history, paths.run_dir / LOSS_CURVE_FILE)}
    coverage = paths.run_dir / "coverage.json"
    if coverage.is_file():
        outputs["coverage"] = coverage
    if result.status == "done":
        outputs.update(export(result, cfg, workspace=workspace, extra=extra))
    append_stage_record(STAGE, profile=cfg["profile"], status=result.status, workspace=workspace,
                        inputs={"model": cfg["model"], "dataset": cfg["dataset"], **(extra or {})},
                        outputs=outputs, metrics={**result.metrics, **loss_summary(result.history),
                                                  "mode": cfg["mode"]})
    return outputs
