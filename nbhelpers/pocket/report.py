"""What notebook 07 shows, written by the stage into the run folder: the preparation report (tokenizer coverage,
an example tokenisation, lengths, parameters) as JSON with a histogram PNG, and the loss-component plot PNG.
Plots are drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..records import write_json


def _save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def prepare_report(prep: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """Tokenizer coverage (train and validation), an example tokenisation, item counts and parameters."""
    from .model import parameter_counts

    sp = prep.tts_model.flow_lm.conditioner.tokenizer.sp
    example = prep.train_items[0].text if prep.train_items else ""
    frames = [it.frames for it in prep.train_items]
    return {
        "vocab_size_asked": cfg["vocab_size"],
        "coverage": prep.coverage,
        "validation_coverage": prep.validation_coverage,
        "example": {"text": example, "pieces": sp.encode(example, out_type=str) if example else []},
        "parameters": parameter_counts(prep.tts_model),
        "train_items": len(prep.train_items),
        "dropped_too_long": prep.dropped,
        "frames_per_item": {"min": min(frames, default=0), "max": max(frames, default=0),
                            "mean": round(sum(frames) / max(1, len(frames)), 1)},
        "latent_cache": str(prep.latent_cache),
        "voice_prompt": str(prep.voice_prompt),
        "config": str(prep.config_path),
        "tokenizer": str(prep.tokenizer),
    }


def plot_lengths(prep: Any, path: Path, frame_rate: float) -> Path:
    """Two histograms: tokens per utterance, and audio length per utterance in Mimi frames (and seconds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3))
    ax[0].hist([len(it.tokens) for it in prep.train_items], bins=20)
    ax[0].set_title("tokens per utterance")
    ax[0].set_xlabel("SentencePiece tokens")
    ax[0].set_ylabel("utterances")
    ax[1].hist([it.frames for it in prep.train_items], bins=20)
    ax[1].set_title(f"Mimi frames per utterance ({frame_rate:g} Hz)")
    ax[1].set_xlabel("frames (1 frame = %.0f ms)" % (1000 / frame_rate))
    ax[1].set_ylabel("utterances")
    return _save_figure(fig, Path(path))


def write_prepare_outputs(prep: Any, cfg: dict[str, Any]) -> dict[str, Path]:
    """``prepare.json`` and ``lengths.png`` in the run folder."""
    run_dir = prep.paths.run_dir
    frame_rate = float(prep.tts_model.config.mimi.frame_rate)
    plot = plot_lengths(prep, run_dir / "lengths.png", frame_rate)
    report = {**prepare_report(prep, cfg), "lengths_plot": str(plot)}
    return {"prepare_report": write_json(run_dir / "prepare.json", report), "lengths_plot": plot}


def plot_losses(history: list[dict[str, Any]], path: Path) -> Path:
    """Three panels over the training steps: total loss with the flow term, the self-distillation (jvp) term
    on the steps that had it, and the EOS binary cross-entropy (all dimensionless)."""
    plt = _pyplot()
    steps = [e["step"] for e in history]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3))
    ax[0].plot(steps, [e["loss"] for e in history], label="total")
    ax[0].plot(steps, [e["flow"] for e in history], label="flow (diagonal)")
    ax[0].set_title("loss")
    ax[0].legend()
    distill = [(e["step"], e["distill"]) for e in history if "distill" in e]
    if distill:
        ax[1].plot(*zip(*distill, strict=True), "o-", ms=3)
    ax[1].set_title("self-distillation (jvp) term")
    ax[2].plot(steps, [e["eos"] for e in history])
    ax[2].set_title("EOS BCE")
    for a in ax:
        a.set_xlabel("step")
        a.set_ylabel("loss (dimensionless)")
    return _save_figure(fig, Path(path))
