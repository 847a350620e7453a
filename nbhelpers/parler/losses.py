"""Parler-TTS's training objective as plain functions: the valid-position mask and the codebook-weighted
cross-entropy, computed like upstream's decoder loss (each codebook's mean CE over its valid positions,
then a weighted mean over codebooks). Kept separate so the distillation stage applies the same mask."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def decoder_inputs(model: Any, labels: torch.Tensor) -> torch.Tensor:
    """Teacher-forcing decoder inputs (B*K, L) from labels (B, L, K): shifted right, BOS first, -100 -> pad."""
    return model.prepare_decoder_input_ids_from_labels(labels).reshape(-1, labels.shape[1])


def valid_mask(labels: torch.Tensor, decoder_input_ids: torch.Tensor, bos: int, eos: int) -> torch.Tensor:
    """(B, L, K) bool: positions that count in the loss - real codes and the first EOS of each codebook;
    never BOS (delay padding), later EOS or batch padding."""
    b, length, k = labels.shape
    inputs = decoder_input_ids.reshape(b, k, length).transpose(1, 2)
    return (labels != -100) & (labels != bos) & (inputs != eos)


def codebook_logits(logits: torch.Tensor, batch: int, codebooks: int, length: int) -> torch.Tensor:
    """The model's (B*K, prompt + L, V) logits -> (B, K, L, V) for the audio positions only."""
    out = logits.reshape(batch, codebooks, logits.shape[1], logits.shape[2])
    return out[:, :, -length:]


def codebook_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                           weights: list[float] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Weighted mean over codebooks of each codebook's mean CE on ``mask``; logits (B, K, L, V), labels and
    mask (B, L, K). Returns the loss and the per-codebook losses (float32)."""
    k = logits.shape[1]
    weights = list(weights) if weights else [1.0] * k
    if len(weights) != k:
        raise ValueError(f"codebook_weights has {len(weights)} entries, the model has {k} codebooks")
    per = []
    for cb in range(k):
        m = mask[..., cb]
        per.append(F.cross_entropy(logits[:, cb][m].float(), labels[..., cb][m]))
    loss = sum(w * p for w, p in zip(weights, per, strict=True)) / sum(weights)
    return loss, per
