"""The fine-tuning study: stage 02 run once per fine-tuning variant (full, LoRA at several ranks, QLoRA 8/4-bit)
on the same data, profile and step budget, then compared on what each costs and reaches: trainable parameters,
peak memory, time per step, the loss curves and the final losses (plus the generation evaluation's figures when
the profile turns it on). Variants a machine cannot run (bitsandbytes needs CUDA) are recorded as not available
with the reason, never simulated.

    python -m nbhelpers.bench finetune-study --profile smoke --variants full,lora:4,lora:16,4bit:8 --steps 8
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import write_json

MODES = ("full", "lora", "8bit", "4bit")
QUANTISED = ("8bit", "4bit")


@dataclass(frozen=True)
class Variant:
    """One fine-tuning variant: a stage 02 ``mode`` and, for the adapter modes, the LoRA rank."""

    mode: str
    rank: int | None = None

    @property
    def name(self) -> str:
        return self.mode if self.rank is None else f"{self.mode}-r{self.rank}"


def parse_variants(spec: str) -> list[Variant]:
    """``"full,lora:8,4bit:16"`` -> variants; a rank is required for the adapter modes and refused for full."""
    out = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        mode, _, rank = item.partition(":")
        if mode not in MODES:
            raise ValueError(f"variant {item!r}: mode must be one of {', '.join(MODES)} (e.g. lora:8)")
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


def _row(variant: Variant, record: dict[str, Any]) -> dict[str, Any]:
    m = record.get("metrics") or {}
    trainable, total = m.get("params_trainable"), m.get("params_total")
    gen = {f"gen_eval_{k}": v for k, v in (m.get("gen_eval") or {}).items() if k != "step"}  # when it ran
    return {"variant": variant.name, "mode": variant.mode, "rank": variant.rank, "status": record.get("status"),
            "steps": m.get("step"), "params_trainable": trainable, "params_total": total,
            "trainable_pct": round(100 * trainable / total, 3) if trainable and total else None,
            "peak_memory_gib": m.get("peak_memory_gib"), "seconds_per_step": m.get("seconds_per_step"),
            "final_loss": m.get("final_loss"), "final_eval_loss": m.get("final_eval_loss"),
            "gpu_util_pct": m.get("gpu_util_pct"), **gen,
            "history": str((record.get("outputs") or {}).get("history") or "")}


def plot_losses(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Training loss against step, one line per variant that ran (labelled axes)."""
    curves = []
    for row in rows:
        history = Path(row.get("history") or "")
        if row.get("status") in ("done", "resume_needed") and history.is_file():
            points = json.loads(history.read_text(encoding="utf-8"))
            curves.append((row["variant"], [p["step"] for p in points], [p["loss"] for p in points]))
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, steps, losses in curves:
        ax.plot(steps, losses, label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (cross-entropy over audio codes)")
    ax.set_title("Parler fine-tuning variants, same data and step budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_study(profile: str, workspace: Workspace, variants: list[Variant], steps: int, *,
              cuda: bool | None = None) -> dict[str, Any]:
    """Run stage 02 once per variant (run folder ``parler/ft-<variant>``, same profile, data and ``steps``), then
    write ``<workspace>/bench/finetune/study.json`` and ``losses.png``; return the study."""
    from .. import nb
    from ..env import gpu_info

    cuda = bool(gpu_info()) if cuda is None else cuda
    out = workspace.stage_dir("bench", "finetune")
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
        try:
            done = nb.run("parler", "train", "--run", f"ft-{variant.name}", "--mode", variant.mode,
                          profile=profile, workspace=workspace.root, settings=settings, quiet=True)
        except nb.StageFailed as err:
            rows.append({"variant": variant.name, "mode": variant.mode, "rank": variant.rank, "status": "failed",
                         "reason": str(err)[:500]})
            continue
        rows.append(_row(variant, done.record or {}))
    chart = plot_losses(rows, out / "losses.png")
    study = {"profile": profile, "steps": steps, "variants": rows, "losses_png": str(chart or "")}
    study["path"] = str(write_json(out / "study.json", study))
    return study
