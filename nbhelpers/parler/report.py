"""What notebook 02 shows, written by the stage's child process into the workspace: the settings and memory
plan, the tokenizer coverage report, the loss curve (PNG) and the before/after sample index (JSON).

The notebook kernel has no numpy/matplotlib: every table here is plain JSON and every plot a PNG file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..profiles.t4 import MEASURED_PEAK_GIB, PARAMS_LORA, PARAMS_TRAINABLE_FULL, T4_BUDGET_GIB, training_memory_gib

# What trains in each mode; the memory figures come from nbhelpers.profiles.t4 (measured in docs/benchmarks.md).
MODES = {"full": ("decoder (T5 + DAC frozen)", PARAMS_TRAINABLE_FULL),
         "lora": ("LoRA r=8 adapters (decoder attention + FFN)", PARAMS_LORA),
         "8bit": ("LoRA r=8 on an 8-bit base", PARAMS_LORA), "4bit": ("LoRA r=8 on a 4-bit NF4 base", PARAMS_LORA)}
MEMORY_PLAN_SOURCE = ("measured peak: benchmarks/parler_memory.py --shape mini --gc, fp16, batch 4 x 10 s (H100; the "
                      "same fp16 memory on a T4); 'at this batch': estimated for batch_size x max_audio_seconds by "
                      "nbhelpers/profiles/t4.py")
TINY_NOTE = "tiny random-weight model: its audio is noise; this run checks the mechanics, not what the model learns"


def memory_plan(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Per mode: what trains, the measured peak at the reference batch, the estimate at this profile's batch and
    whether that fits a T4; the profile's ``mode`` marked."""
    rows = []
    for mode, (what, trainable) in MODES.items():
        at_batch = training_memory_gib("parler", {**cfg, "mode": mode})["total"]
        rows.append({"mode": mode, "what trains": what, "trainable M": round(trainable / 1e6, 2),
                     "peak GiB (4 x 10 s)": MEASURED_PEAK_GIB[(mode, True)], "GiB at this batch": at_batch,
                     "fits T4": "yes" if at_batch <= T4_BUDGET_GIB else "no",
                     "chosen": "<-" if mode == cfg["mode"] else ""})
    return rows


def effective_batch(batch_size: int, processes: int, grad_accum: int) -> int:
    """Utterances per optimiser step: the per-device batch x processes x gradient accumulation."""
    return int(batch_size) * int(processes) * int(grad_accum)


def plan(cfg: dict[str, Any], *, precision: str, gpus: int) -> dict[str, Any]:
    """Settings, precision, the expected processes and batch, and the memory plan: what notebook 02 shows
    before any work."""
    processes = max(1, gpus)
    return {"profile": cfg["profile"], "mode": cfg["mode"], "model": cfg["model"], "precision": precision,
            "gpus": gpus, "processes_expected": processes,
            "effective_batch_expected": effective_batch(cfg["batch_size"], processes, cfg["grad_accum"]),
            "note": TINY_NOTE if cfg["model"] == "tiny" else "",
            "settings": {k: v for k, v in cfg.items()},
            "memory_plan": memory_plan(cfg), "memory_plan_source": MEMORY_PLAN_SOURCE}


def coverage_summary(report: dict[str, Any], data: Any, dataset: str) -> dict[str, Any]:
    """The coverage report as notebook 02 shows it: the dataset's splits, the prompt tokenizer's figures
    and (apart) the texts that do not decode back."""
    return {"dataset": dataset, "splits": {name: len(split) for name, split in data.items()},
            "prompt_tokenizer": {k: v for k, v in report.items() if k != "examples_not_round_trip"},
            "examples_not_round_trip": list(report.get("examples_not_round_trip", []))}


def loss_summary(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean training loss over the first and the last 10 % of steps (what the tests compare)."""
    losses = [h["loss"] for h in history]
    if not losses:
        return {}
    tenth = max(1, len(losses) // 10)
    return {"loss_first_10pct": sum(losses[:tenth]) / tenth, "loss_last_10pct": sum(losses[-tenth:]) / tenth}


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike, *, parts: tuple[str, ...] = (),
                title: str = "Parler-TTS fine-tune", ylabel: str = "codebook cross-entropy (nats)") -> Path:
    """Training loss (and ``parts``, e.g. the distillation terms) per optimiser step, with validation loss in a
    second panel; labelled axes. Drawn with matplotlib's Agg backend, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = [h["step"] for h in history]
    evals = [(h["step"], h["eval_loss"]) for h in history if h.get("eval_loss") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    ax = axes[0]
    ax.plot(steps, [h["loss"] for h in history], label="train (total)")
    for part in parts:
        values = [(h["step"], h[part]) for h in history if part in h]
        if values:
            ax.plot(*zip(*values, strict=True), label=part, alpha=0.8)
    ax.set(xlabel="optimiser step", ylabel=ylabel, title=f"{title}: training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax = axes[1]
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", color="tab:orange", label="validation")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation step yet (eval_every)", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="optimiser step", ylabel="codebook cross-entropy (nats)", title=f"{title}: validation loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def base_state(model: str) -> str:
    """How the model a run starts from is named beside its audio."""
    return "random weights (tiny smoke model)" if model == "tiny" else model


def sample_rows(cfg: dict[str, Any], samples_dir: str | os.PathLike, step: int) -> list[dict[str, Any]]:
    """The samples contract's rows (:mod:`nbhelpers.samples`) for the fixed sentences: each sentence's clip before
    fine-tuning and after ``step`` steps, with the voice description; a clip that was not written is left out."""
    from ..samples import sample_row

    folder, base = Path(samples_dir), base_state(cfg["model"])
    states = {"before": f"before fine-tuning: {base}", "after": f"after {step} steps fine-tuned from {base}"}
    return [sample_row(sentence, folder / f"{when}_{i}.wav", state, description=cfg["sample_description"])
            for i, sentence in enumerate(cfg["sample_sentences"]) for when, state in states.items()
            if (folder / f"{when}_{i}.wav").is_file()]
