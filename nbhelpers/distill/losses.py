"""Knowledge-distillation losses for Parler-TTS students.

Logits come from ``ParlerTTSForConditionalGeneration`` as ``(batch * codebooks, prompt + T, vocab)``;
labels are the delayed codes ``(batch, T, codebooks)`` with -100 on padding. A position of codebook ``k``
counts only where upstream's own loss counts it: the label is not padding (-100), not the BOS of the delay
pattern, and the decoder input there is not EOS (only the first EOS of each codebook is a target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..parler.losses import codebook_cross_entropy, codebook_logits, valid_mask

__all__ = ["valid_mask", "kd_loss", "TopKLogits", "topk_logits", "hidden_match_loss", "encoder_match_loss"]


@dataclass
class TopKLogits:
    """The teacher's ``k`` largest logits per position, their code ids, and the full-vocabulary
    ``logsumexp(logits / T)`` at the training temperature: enough for the top-k KL of :func:`kd_loss`."""

    values: torch.Tensor  # (B, K, L, k) raw logits
    indices: torch.Tensor  # (B, K, L, k) code ids
    lse: torch.Tensor  # (B, K, L) logsumexp over the whole vocabulary of logits / T


def topk_logits(logits: torch.Tensor, k: int, temperature: float) -> TopKLogits:
    """Top-``k`` view of full logits ``(B, K, L, V)`` (``k`` must be below ``V``: 0 < k < V)."""
    if not 0 < k < logits.shape[-1]:
        raise ValueError(f"kd_topk must lie in 1..{logits.shape[-1] - 1} for {logits.shape[-1]} codes "
                         "(0 in the profile keeps the full distribution)")
    logits = logits.float()
    values, indices = logits.topk(k, dim=-1)
    return TopKLogits(values, indices, torch.logsumexp(logits / temperature, dim=-1))


def _kl_full(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-position ``KL(softmax(t/T) || softmax(s/T))`` over the whole vocabulary."""
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)


def _kl_topk(s: torch.Tensor, t: TopKLogits, temperature: float) -> torch.Tensor:
    """Per-position KL between the teacher and student distributions coarsened to k + 1 outcomes: the
    teacher's top-k codes one by one, all other codes as one "tail" outcome (see :func:`kd_loss`)."""
    log_q = F.log_softmax(s / temperature, dim=-1)
    log_q_top = log_q.gather(-1, t.indices)
    log_p_top = t.values.float() / temperature - t.lse.float().unsqueeze(-1)
    p_top = log_p_top.exp()
    p_tail = (1 - p_top.sum(-1)).clamp(min=0)
    log_q_tail = torch.logsumexp(log_q.scatter(-1, t.indices, float("-inf")), dim=-1)
    return (p_top * (log_p_top - log_q_top)).sum(-1) + torch.xlogy(p_tail, p_tail) - p_tail * log_q_tail


def _weights(k: int, codebook_weights: Sequence[float] | None, device: torch.device) -> torch.Tensor:
    w = torch.ones(k) if codebook_weights is None else torch.tensor([float(x) for x in codebook_weights])
    if w.numel() != k:
        raise ValueError(f"codebook_weights has {w.numel()} entries, the model has {k} codebooks")
    return (w / w.sum()).to(device)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKLogits | None, labels: torch.Tensor,
            mask: torch.Tensor, *, temperature: float = 2.0, ce_weight: float = 1.0, kd_weight: float = 1.0,
            codebook_weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``ce_weight * CE(student, true codes) + kd_weight * T^2 * KL(teacher_T || student_T)``.

    Both terms are per-codebook means over the ``mask`` positions, combined with ``codebook_weights``
    (normalised); masked positions contribute nothing. ``teacher_logits=None`` gives plain CE.
    Teacher logits are the model's ``(B*K, prompt + L, V)``, or ``(B, K, L, V)`` audio positions only.

    With :class:`TopKLogits` (top set ``S`` of the teacher, ``p = softmax(teacher/T)``, ``q = softmax(student/T)``,
    tails ``p_tail = 1 - sum_S p``, ``q_tail = 1 - sum_S q``) the KL is
    ``sum_{v in S} p_v log(p_v / q_v) + p_tail log(p_tail / q_tail)``: the exact KL between the two distributions
    coarsened to k + 1 outcomes. It never exceeds the full KL (log-sum inequality), equals it when ``k = V - 1``
    or when the student spreads its tail mass like the teacher, and is 0 iff the student matches the teacher
    on ``S`` and on the tail mass.
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
        if isinstance(teacher_logits, TopKLogits):
            kl_pos = _kl_topk(s, teacher_logits, temperature)  # (b, k, t)
        else:
            tl = teacher_logits if teacher_logits.dim() == 4 else codebook_logits(teacher_logits, b, k, t)
            kl_pos = _kl_full(s, tl.float(), temperature)
        kd_k = (kl_pos * mask_k).sum(dim=(0, 2)) / count * temperature ** 2
    kd = (kd_k * w).sum()
    return {"loss": ce_weight * ce + kd_weight * kd, "ce": ce, "kd": kd, "per_codebook_kd": kd_k.detach()}


def hidden_match_loss(student_layers: Sequence[torch.Tensor], teacher_layers: Sequence[torch.Tensor],
                      position_mask: torch.Tensor, projections: Sequence[torch.nn.Module] | None = None) -> torch.Tensor:
    """Mean over mapped layer pairs of the masked mean squared error between a student layer's output and its
    teacher layer's output.

    ``student_layers[i]`` ``(batch, T, d_student)`` pairs with ``teacher_layers[i]`` ``(batch, T, d_teacher)``
    (the audio positions), compared where ``position_mask`` ``(batch, T)`` is true. A narrower student passes
    ``projections`` (one learnt ``d_student -> d_teacher`` map per pair), applied before the comparison.
    """
    if projections is not None and len(projections) != len(student_layers):
        raise ValueError(f"{len(projections)} projections for {len(student_layers)} mapped layers")
    m = position_mask.unsqueeze(-1).float()
    total = torch.zeros((), device=position_mask.device)
    for i, (hs, ht) in enumerate(zip(student_layers, teacher_layers, strict=True)):
        hs = projections[i](hs) if projections is not None else hs
        if hs.shape[-1] != ht.shape[-1]:
            raise ValueError(f"student layer width {hs.shape[-1]} differs from the teacher's {ht.shape[-1]}: a narrow "
                             "student needs hidden projections (nbhelpers.distill.student.attach_hidden_projections)")
        diff = (hs.float() - ht.float()) ** 2
        total = total + (diff * m).sum() / (m.sum() * ht.shape[-1]).clamp(min=1)
    return total / max(len(student_layers), 1)


def encoder_match_loss(student_states: torch.Tensor, teacher_states: torch.Tensor,
                       attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Masked mean squared error between the student and teacher description-encoder outputs."""
    diff = (student_states.float() - teacher_states.float()) ** 2
    if attention_mask is None:
        return diff.mean()
    m = attention_mask.unsqueeze(-1).to(diff.dtype)
    return (diff * m).sum() / (m.sum() * diff.shape[-1]).clamp(min=1)
