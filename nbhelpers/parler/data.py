"""From a prepared dataset plus cached codes to training batches: tokenised transcripts and descriptions,
delay-pattern labels, length-grouped batches and a collate function. Shared with the distillation stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..training import length_grouped_batches, mixed_batches  # noqa: F401  (shared with stage 07)
from .model import ParlerBundle

REQUIRED_COLUMNS = ("text", "text_description")


@dataclass
class Example:
    """One utterance ready for training: its codes and both token sequences."""

    codes: torch.Tensor  # (codebooks, frames) int16
    prompt_ids: list[int]
    description_ids: list[int]
    row: int  # row in the dataset split, for error messages and samples

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])


def check_columns(split: Any, name: str) -> None:
    """A clear error when the dataset lacks a column the trainer needs."""
    missing = [c for c in REQUIRED_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"dataset split {name!r} lacks column(s) {missing} (has {split.column_names}). "
                         "Re-run data prep (01_data_prep), which writes text and text_description for Parler-TTS.")


@dataclass(frozen=True)
class Filters:
    """Which utterances are trained on, as upstream parler-tts filters them: audio longer than ``max_frames`` (long
    outliers run a T4 out of memory) or shorter than ``min_frames``, transcripts over ``max_prompt_tokens`` and
    descriptions over ``max_description_tokens`` prompt/description tokens are dropped; 0 or None = no limit."""

    max_frames: int | None = None
    min_frames: int = 0
    max_prompt_tokens: int = 0
    max_description_tokens: int = 0

    @classmethod
    def from_profile(cls, cfg: dict[str, Any], frame_rate: float) -> Filters:
        return cls(max_frames=int(cfg["max_audio_seconds"] * frame_rate),
                   min_frames=int(cfg["min_audio_seconds"] * frame_rate),
                   max_prompt_tokens=cfg["max_prompt_tokens"],
                   max_description_tokens=cfg["max_description_tokens"])

    def reason(self, frames: int, prompt_tokens: int, description_tokens: int) -> str | None:
        """Why an utterance is dropped (a key of the dropped counts), or None when it is kept."""
        if self.max_frames is not None and frames > self.max_frames:
            return "too_long"
        if frames < self.min_frames:
            return "too_short"
        if self.max_prompt_tokens and prompt_tokens > self.max_prompt_tokens:
            return "prompt_too_long"
        if self.max_description_tokens and description_tokens > self.max_description_tokens:
            return "description_too_long"
        return None


def build_examples(bundle: ParlerBundle, split: Any, codes: list[torch.Tensor], *, filters: Filters = Filters(),
                   name: str = "train") -> tuple[list[Example], dict[str, list[int]]]:
    """Tokenise one split and pair rows with their codes; rows ``filters`` rejects are dropped and returned as
    ``{reason: [row numbers]}`` so the caller can report them."""
    check_columns(split, name)
    if len(codes) != len(split):
        raise ValueError(f"split {name!r}: {len(codes)} cached code rows for {len(split)} dataset rows; "
                         "delete the code cache folder and encode again")
    prompts = bundle.prompt_tokenizer(list(split["text"])).input_ids
    descriptions = bundle.description_tokenizer(list(split["text_description"])).input_ids
    kept, dropped = [], {}
    for row, (c, p, d) in enumerate(zip(codes, prompts, descriptions, strict=True)):
        why = filters.reason(int(c.shape[1]), len(p), len(d))
        if why is not None:
            dropped.setdefault(why, []).append(row)
            continue
        kept.append(Example(c, p, d, row))
    if not kept:
        counts = ", ".join(f"{len(rows)} {why.replace('_', ' ')}" for why, rows in dropped.items())
        raise ValueError(f"split {name!r}: no utterance left after the filters ({counts}); loosen max_audio_seconds, "
                         "min_audio_seconds, max_prompt_tokens or max_description_tokens in the profile")
    return kept, dropped


def delayed_labels(codes: torch.Tensor, bos: int, eos: int) -> torch.Tensor:
    """Codes (K, T) -> labels (T + K, K) in Parler-TTS's delay pattern, as upstream's training collator
    builds them: codebook k starts k steps late (BOS before it) and is followed by K - k EOS, so every
    codebook learns to stop; the loss ignores BOS labels and every EOS after the first."""
    k, t = codes.shape
    labels = torch.full((k, t + k), eos, dtype=torch.long)
    for cb in range(k):
        labels[cb, :cb] = bos
        labels[cb, cb:cb + t] = codes[cb].long()
    return labels.T


def _pad(seqs: list[list[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, sl], mask[i, sl] = torch.tensor(s, dtype=torch.long), 1
    return ids, mask


class Collator:
    """Pads a list of examples into model inputs: descriptions right-padded, transcripts left-padded (they
    are prepended to the audio tokens, so left padding keeps them adjacent), labels padded with -100."""

    def __init__(self, bundle: ParlerBundle):
        dec = bundle.model.config.decoder
        self.bos, self.eos = int(dec.bos_token_id), int(dec.eos_token_id)
        self.prompt_pad = int(bundle.prompt_tokenizer.pad_token_id)
        self.description_pad = int(bundle.description_tokenizer.pad_token_id)

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        desc, desc_mask = _pad([e.description_ids for e in examples], self.description_pad, left=False)
        prompt, prompt_mask = _pad([e.prompt_ids for e in examples], self.prompt_pad, left=True)
        labels = [delayed_labels(e.codes, self.bos, self.eos) for e in examples]
        width = max(lab.shape[0] for lab in labels)
        padded = torch.full((len(labels), width, labels[0].shape[1]), -100, dtype=torch.long)
        for i, lab in enumerate(labels):
            padded[i, :lab.shape[0]] = lab
        return {"input_ids": desc, "attention_mask": desc_mask, "prompt_input_ids": prompt,
                "prompt_attention_mask": prompt_mask, "labels": padded}
