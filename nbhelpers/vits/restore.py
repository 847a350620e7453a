"""Weights-only restore for fine-tuning (what coqui's ``restore_path`` does), made visible: old weight-norm keys
are converted first and the result says how many tensors were restored and which were reinitialised.

Why not coqui's own path: with a changed vocabulary the strict load fails, coqui falls back to a partial load
that keeps only keys present in the model, and checkpoints saved before torch's parametrized weight norm
(``weight_g``/``weight_v``) then silently lose every weight-normed layer."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

TEXT_EMBEDDING = "text_encoder.emb.weight"
DISCRIMINATOR = "disc."


class RestoreWarning(UserWarning):
    """More than the text embedding was reinitialised: the fine-tune starts partly from scratch."""


@dataclass
class RestoreReport:
    """What a restore did: tensor counts and names (discriminator tensors are counted separately)."""

    checkpoint: str
    restored: int = 0
    reinitialised: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # checkpoint tensors the model has no place for
    converted_weight_norm: int = 0  # weight_g/weight_v pairs renamed before loading

    @property
    def total(self) -> int:
        return self.restored + len(self.reinitialised)

    @property
    def unexpected_resets(self) -> list[str]:
        """Reinitialised generator tensors other than the text embedding (a vocabulary change resets only that)."""
        return [k for k in self.reinitialised if k != TEXT_EMBEDDING and not k.startswith(DISCRIMINATOR)]

    def summary(self) -> str:
        disc = sum(k.startswith(DISCRIMINATOR) for k in self.reinitialised)
        lines = [f"restored {self.restored}/{self.total} tensors from {self.checkpoint}",
                 f"reinitialised {len(self.reinitialised)}: text embedding "
                 f"{'yes' if TEXT_EMBEDDING in self.reinitialised else 'no'}, discriminator {disc}, "
                 f"other generator tensors {len(self.unexpected_resets)}"]
        if self.converted_weight_norm:
            lines.append(f"converted {self.converted_weight_norm} old weight-norm pairs (weight_g/weight_v)")
        if self.unused:
            lines.append(f"{len(self.unused)} checkpoint tensors unused, e.g. {', '.join(self.unused[:3])}")
        if self.unexpected_resets:
            lines.append("WARNING: more than the text embedding was reset: " + ", ".join(self.unexpected_resets[:8])
                         + (" ..." if len(self.unexpected_resets) > 8 else ""))
        return "\n".join(lines)


def convert_weight_norm_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Rename pre-parametrization weight-norm keys ``X.weight_g``/``X.weight_v`` to
    ``X.parametrizations.weight.original0``/``original1``; returns the new dict and the number of pairs."""
    out, pairs = {}, 0
    for key, value in state.items():
        if key.endswith(".weight_g") and key[:-1] + "v" in state:
            out[key[: -len("weight_g")] + "parametrizations.weight.original0"] = value
            pairs += 1
        elif key.endswith(".weight_v") and key[:-1] + "g" in state:
            out[key[: -len("weight_v")] + "parametrizations.weight.original1"] = value
        else:
            out[key] = value
    return out, pairs


def load_state(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict of a coqui checkpoint (``{"model": ...}``) or of a bare state dict file."""
    data = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{checkpoint} holds no model state dict (expected a coqui checkpoint with a 'model' "
                         "entry). Fix: point restore_path at a VITS .pth such as best_model.pth or checkpoint_N.pth.")
    return data


def plan_restore(model: torch.nn.Module, state: dict[str, torch.Tensor], checkpoint: str = "") -> tuple[dict, RestoreReport]:
    """Which checkpoint tensors fit ``model`` (same name and shape), without loading anything."""
    state, pairs = convert_weight_norm_keys({k: v for k, v in state.items() if "speaker_encoder" not in k})
    target = model.state_dict()
    usable = {k: v for k, v in state.items() if k in target and tuple(v.shape) == tuple(target[k].shape)}
    report = RestoreReport(str(checkpoint), restored=len(usable),
                           reinitialised=sorted(k for k in target if k not in usable),
                           unused=sorted(k for k in state if k not in usable), converted_weight_norm=pairs)
    return usable, report


def restore_weights(model: torch.nn.Module, checkpoint: str | Path) -> RestoreReport:
    """Load every fitting tensor of ``checkpoint`` into ``model``; warn loudly (RestoreWarning) when more than
    the text embedding was reinitialised."""
    usable, report = plan_restore(model, load_state(checkpoint), str(checkpoint))
    model.load_state_dict(usable, strict=False)
    log.info("%s", report.summary())
    if report.unexpected_resets:
        warnings.warn("\n" + "!" * 70 + f"\n{report.summary()}\nThe checkpoint does not match this architecture: "
                      "these layers start from random weights. Check the start model and its config.\n" + "!" * 70,
                      RestoreWarning, stacklevel=2)
    return report


def report_dict(report: RestoreReport) -> dict[str, Any]:
    """The report as plain data for the stage record."""
    return {"checkpoint": report.checkpoint, "restored": report.restored, "reinitialised": len(report.reinitialised),
            "reinitialised_generator_other": len(report.unexpected_resets),
            "text_embedding_reset": TEXT_EMBEDDING in report.reinitialised,
            "converted_weight_norm_pairs": report.converted_weight_norm}
