"""Knowledge-distillation losses for Parler-TTS students.

Logits come from ``ParlerTTSForConditionalGeneration`` as ``(batch * codebooks, prompt + T, vocab)``;
labels are the delayed codes ``(batch, T, codebooks)`` with -100 on padding. A position of codebook ``k``
counts only where upstream's own loss counts it: the label is not padding (-100), not the BOS of the delay
pattern, and the decoder input there is not EOS (only the first EOS of each codebook is a target).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..parler.losses import codebook_cross_entropy, codebook_logits, valid_mask

__all__ = ["valid_mask", "kd_loss", "hidden_match_loss", "encoder_match_loss"]


def _weights(k: int, codebook_weights: Sequence[float] | None, device: torch.device) -> torch.Tensor:
    w = torch.ones(k) if codebook_weights is None else torch.tensor([float(x) for x in codebook_weights])
    if w.numel() != k:
        raise ValueError(f"codebook_weights has {w.numel()} entries, the model has {k} codebooks")
    return (w / w.sum()).to(device)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
            mask: torch.Tensor, *, temperature: float = 2.0, ce_weight: float = 1.0, kd_weight: float = 1.0,
            codebook_weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``ce_weight * CE(student, true codes) + kd_weight * T^2 * KL(teacher_T || student_T)``.

    Both terms are per-codebook means over the ``mask`` positions, combined with ``codebook_weights``
    (normalised); masked positions contribute nothing. ``teacher_logits=None`` gives plain CE.
    Returns ``loss``, ``ce``, ``kd`` (the KL term before its weight) and ``per_codebook_kd``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    b, t, k = labels.shape
    s = codebook_logits(student_logits, b, k, t).float()
    w = _weights(k, codebook_weights, s.device)
    ce, _ = codebook_cross_entropy(s, labels, mask, list(codebook_weights) if codebook_weights else None)
    mask_k = mask.permute(0, 2, 1)  # (b, k, t)
    count = mask_k.sum(dim=(0, 2)).clamp(min=1)
    if teacher_logits is None:
        kd_k = torch.zeros(k, device=s.device)
    else:
        tl = codebook_logits(teacher_logits, b, k, t).float()
        log_p_s = F.log_softmax(s / temperature, dim=-1)
        log_p_t = F.log_softmax(tl / temperature, dim=-1)
        kl_pos = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # (b, k, t)
        kd_k = (kl_pos * mask_k).sum(dim=(0, 2)) / count * temperature ** 2
    kd = (kd_k * w).sum()
    return {"loss": ce_weight * ce + kd_weight * kd, "ce": ce, "kd": kd, "per_codebook_kd": kd_k.detach()}


def hidden_match_loss(student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor],
                      layer_map: Sequence[int], steps: int, position_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between each student layer's output and its mapped teacher layer's output.

    ``*_hidden`` are the decoders' ``hidden_states`` tuples (index 0 = embeddings, so student layer ``i``
    is ``[i + 1]`` and its teacher is ``[layer_map[i] + 1]``), compared on the last ``steps`` positions
    where ``position_mask`` ``(batch, T)`` is true. Copied-layer students only (same width as the teacher).
    """
    m = position_mask.unsqueeze(-1).float()
    total = torch.zeros((), device=position_mask.device)
    for i, j in enumerate(layer_map):
        hs = student_hidden[i + 1][:, -steps:].float()
        ht = teacher_hidden[j + 1][:, -steps:].float()
        total = total + (((hs - ht) ** 2) * m).sum() / (m.sum() * ht.shape[-1]).clamp(min=1)
    return total / max(len(layer_map), 1)


def encoder_match_loss(student_states: torch.Tensor, teacher_states: torch.Tensor,
                       attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Masked mean squared error between the student and teacher description-encoder outputs."""
    diff = (student_states.float() - teacher_states.float()) ** 2
    if attention_mask is None:
        return diff.mean()
    m = attention_mask.unsqueeze(-1).to(diff.dtype)
    return (diff * m).sum() / (m.sum() * diff.shape[-1]).clamp(min=1)
