"""The fine-tuning study: one stage trained once per fine-tuning variant on the same data, profile and step budget,
then compared on what each costs and reaches: trainable parameters, peak memory, time per step, the loss curves and
the final losses (plus the generation evaluation's figures when the profile turns it on). Stage 02 (Parler): full,
LoRA at several ranks, QLoRA 8/4-bit; stage 04 (VITS): full and LoRA at several ranks (:mod:`nbhelpers.vits.lora`).
Variants a machine cannot run (bitsandbytes needs CUDA) are recorded as not available with the reason, never
simulated.

    python -m nbhelpers.bench finetune-study --profile smoke --variants full,lora:4,lora:16,4bit:8 --steps 8
    python -m nbhelpers.bench finetune-study --stage vits --profile smoke --variants full,lora:4,lora:16 --steps 8
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import write_json

MODES = {"parler": ("full", "lora", "8bit", "4bit"), "vits": ("full", "lora")}  # the modes each stage trains in
QUANTISED = ("8bit", "4bit")
DEFAULT_VARIANTS = {"parler": "full,lora:8,lora:32,4bit:8", "vits": "full,lora:8,lora:32"}
# what each stage's final loss is: stage 02's code cross-entropy; VITS's mel reconstruction L1 (x its weight, 45),
# the loss its adapters and full training can be compared on (the GAN losses trade off against each other)
LOSS_LABEL = {"parler": "training loss (cross-entropy over audio codes)", "vits": "VITS mel loss (L1 x 45)"}


@dataclass(frozen=True)
class Variant:
    """One fine-tuning variant: a stage 02 ``mode`` and, for the adapter modes, the LoRA rank."""

    mode: str
    rank: int | None = None

    @property
    def name(self) -> str:
        return self.mode if self.rank is None else f"{self.mode}-r{self.rank}"


def parse_variants(spec: str, stage: str = "parler") -> list[Variant]:
    """``"full,lora:8,4bit:16"`` -> variants of ``stage``; a rank is required for the adapter modes and refused for
    full."""
    out = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        mode, _, rank = item.partition(":")
        if mode not in MODES[stage]:
            raise ValueError(f"variant {item!r}: {stage}'s mode must be one of {', '.join(MODES[stage])} (e.g. lora:8)")
        if mode == "full":
            if rank:
                raise ValueError(f"variant {item!r}: full fine-tuning has no rank; write 'full'")
            out.append(Variant(mode))
            continue
        if not rank.isdigit() or int(rank) < 1:
            raise ValueError(f"variant {item!r}: give the LoRA rank as a whole number >= 1, e.g. {mode}:8")
        out.append(Variant(mode, int(rank)))
    if len({v.name for v in out}) != len(out):
        raise ValueError(f"variants {spec!r} name the same variant twice")
    if not out:
        raise ValueError("no variants given: e.g. --variants full,lora:8")
    return out


def _row(variant: Variant, record: dict[str, Any], stage: str) -> dict[str, Any]:
    m = record.get("metrics") or {}
    trainable, total = m.get("params_trainable"), m.get("params_total")
    gen = {f"gen_eval_{k}": v for k, v in (m.get("gen_eval") or {}).items() if k != "step"}  # when it ran
    outputs = record.get("outputs") or {}
    return {"variant": variant.name, "mode": variant.mode, "rank": variant.rank, "status": record.get("status"),
            "steps": m.get("step", m.get("end_step")), "params_trainable": trainable, "params_total": total,
            "trainable_pct": round(100 * trainable / total, 3) if trainable and total else None,
            "peak_memory_gib": m.get("peak_memory_gib"), "peak_rss_mib": m.get("peak_rss_mib"),
            "seconds_per_step": m.get("seconds_per_step"),
            "final_loss": m.get("final_loss") if stage == "parler" else m.get("train_loss_mel"),
            "final_eval_loss": m.get("final_eval_loss"), "gpu_util_pct": m.get("gpu_util_pct"), **gen,
            # where the loss curve is: stage 02's history.json, VITS's TensorBoard events in its run folder
            "history": str(outputs.get("history") or ""), "run_dir": str(outputs.get("run_dir") or "")}


def loss_curve(row: dict[str, Any], stage: str) -> tuple[list[int], list[float]] | None:
    """(steps, losses) of one variant that ran, from where its stage logs them."""
    if row.get("status") not in ("done", "resume_needed"):
        return None
    if stage == "vits":
        from ..vits.export import loss_curves

        run_dir = Path(row.get("run_dir") or "")
        return loss_curves(run_dir, ("loss_mel",)).get("loss_mel") if run_dir.is_dir() else None
    history = Path(row.get("history") or "")
    if not history.is_file():
        return None
    points = json.loads(history.read_text(encoding="utf-8"))
    return [p["step"] for p in points], [p["loss"] for p in points]


def plot_losses(rows: list[dict[str, Any]], path: Path, stage: str = "parler") -> Path | None:
    """Training loss against step, one line per variant that ran (labelled axes)."""
    curves = [(row["variant"], curve) for row in rows if (curve := loss_curve(row, stage))]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (steps, losses) in curves:
        ax.plot(steps, losses, label=name, marker="." if len(steps) < 50 else None)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(LOSS_LABEL[stage])
    ax.set_title(f"{'Parler' if stage == 'parler' else 'VITS'} fine-tuning variants, same data and step budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_study(profile: str, workspace: Workspace, variants: list[Variant], steps: int, *, stage: str = "parler",
              cuda: bool | None = None) -> dict[str, Any]:
    """Train ``stage`` once per variant (same profile, data and ``steps``): stage 02 into run folders
    ``parler/ft-<variant>``; VITS as a new run each (``--no-resume``, no export), with the suite's budget instead of
    the smoke profile's 10 s. Then write ``<workspace>/bench/finetune[-vits]/study.json`` and ``losses.png``."""
    from .. import nb
    from ..env import gpu_info

    cuda = bool(gpu_info()) if cuda is None else cuda
    out = workspace.stage_dir("bench", "finetune" if stage == "parler" else f"finetune-{stage}")
    rows: list[dict[str, Any]] = []
    for variant in variants:
        if variant.mode in QUANTISED and not cuda:
            rows.append({"variant": variant.name, "mode": variant.mode, "rank": variant.rank, "status": "not_available",
                         "reason": "bitsandbytes 8/4-bit base weights need a CUDA GPU (run on the kaggle-t4 profile)"})
            continue
        settings: dict[str, Any] = {"max_steps": steps}
        if variant.rank is not None:
            settings["lora_rank"] = variant.rank
            settings["lora_alpha"] = 2 * variant.rank  # the usual alpha = 2 x rank keeps the update scale per rank
        if stage == "parler":
            args: tuple[str, ...] = ("train", "--run", f"ft-{variant.name}", "--mode", variant.mode)
        else:
            args = ("train", "--no-resume", "--no-finish")
            settings.update(mode=variant.mode, budget_seconds=0)
        try:
            done = nb.run(stage, *args, profile=profile, workspace=workspace.root, settings=settings, quiet=True)
        except nb.StageFailed as err:
            rows.append({"variant": variant.name, "mode": variant.mode, "rank": variant.rank, "status": "failed",
                         "reason": str(err)[:500]})
            continue
        rows.append(_row(variant, done.record or {}, stage))
    chart = plot_losses(rows, out / "losses.png", stage)
    study = {"stage": stage, "profile": profile, "steps": steps, "variants": rows, "losses_png": str(chart or "")}
    study["path"] = str(write_json(out / "study.json", study))
    return study
