"""Kannada-only prompt vocabulary: keep the prompt-embedding rows a Kannada student can ever need and ship a
tokenizer that maps text straight to the new ids.

Kept ids (:func:`select_prompt_vocab`): every token of the Kannada corpus as the teacher's tokenizer splits
it, every special token, every byte-fallback token (``<0xNN>``, SentencePiece with ``byte_fallback``), and
the tokens of a coverage text (every Kannada character, ASCII digits and punctuation) so that text outside
the corpus still has a faithful spelling.

:class:`PrunedTokenizer` tokenises with the teacher's own tokenizer and renumbers: a token that was kept maps
to its new id; a token that was dropped is re-spelled as the longest kept pieces whose concatenation is the
same string, then as its UTF-8 bytes through byte-fallback tokens (or the unknown token when the tokenizer
has none). Corpus text therefore gets exactly the teacher's segmentation (renumbered), and any text decodes
to what the teacher's tokenizer would decode.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, BatchEncoding, PreTrainedTokenizerBase

BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
VOCAB_FILE = "pruned_vocab.json"
KANNADA_BLOCK = range(0x0C80, 0x0D00)


def kannada_coverage_text() -> str:
    """Every assigned Kannada character plus ASCII digits, punctuation and space."""
    kn = "".join(chr(c) for c in KANNADA_BLOCK if unicodedata.name(chr(c), None))
    return kn + string.digits + string.punctuation + " "


def byte_fallback_ids(tokenizer: PreTrainedTokenizerBase) -> dict[int, int]:
    """byte value -> token id for the ``<0xNN>`` pieces of a byte-fallback tokenizer (empty if none)."""
    found = {}
    for piece, idx in tokenizer.get_vocab().items():
        if m := BYTE_PIECE.match(piece):
            found[int(m[1], 16)] = idx
    return found


def select_prompt_vocab(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str],
                        coverage: str | None = None) -> list[int]:
    """Sorted teacher ids a Kannada-only student keeps (corpus tokens, specials, byte fallback, coverage)."""
    keep: set[int] = set(tokenizer.all_special_ids) | set(byte_fallback_ids(tokenizer).values())
    n = 0
    for text in texts:
        keep.update(tokenizer(text, add_special_tokens=True)["input_ids"])
        n += 1
    if n == 0:
        raise ValueError("no corpus text given: vocabulary pruning needs the Kannada training transcripts")
    vocab = tokenizer.get_vocab()
    for ch in coverage if coverage is not None else kannada_coverage_text():
        keep.update(tokenizer(ch, add_special_tokens=False)["input_ids"])
        for piece in (ch, "\u2581" + ch):  # bare and word-initial SentencePiece pieces
            if piece in vocab:
                keep.add(vocab[piece])
    return sorted(i for i in keep if i is not None)


class PrunedTokenizer:
    """The teacher's prompt tokenizer renumbered onto a pruned vocabulary (see the module docstring)."""

    def __init__(self, base: PreTrainedTokenizerBase, kept_ids: list[int]):
        if len(set(kept_ids)) != len(kept_ids):
            raise ValueError("kept_ids contains duplicates")
        self.base = base
        self.kept_ids = list(kept_ids)
        self.old_to_new = {old: new for new, old in enumerate(self.kept_ids)}
        self._bytes = {b: i for b, i in byte_fallback_ids(base).items() if i in self.old_to_new}
        special = set(base.all_special_ids)
        pieces = base.convert_ids_to_tokens(self.kept_ids)
        self._pieces = {p: i for p, i in zip(pieces, self.kept_ids, strict=True)
                        if i not in special and not BYTE_PIECE.match(p)}
        self._longest = max((len(p) for p in self._pieces), default=1)
        self._respell: dict[int, list[int]] = {}
        self.unk_token_id = self._new_or_none(base.unk_token_id)
        self.pad_token_id = self._new_or_none(base.pad_token_id)
        self.eos_token_id = self._new_or_none(base.eos_token_id)
        self.bos_token_id = self._new_or_none(base.bos_token_id)

    def _new_or_none(self, old: int | None) -> int | None:
        return None if old is None else self.old_to_new.get(old)

    @property
    def vocab_size(self) -> int:
        return len(self.kept_ids)

    def __len__(self) -> int:
        return len(self.kept_ids)

    @property
    def padding_side(self) -> str:
        return self.base.padding_side

    @padding_side.setter
    def padding_side(self, side: str) -> None:
        self.base.padding_side = side

    def id_map(self) -> torch.Tensor:
        """old id -> new id as a lookup tensor (-1 for dropped ids), for renumbering cached batches."""
        table = torch.full((max(len(self.base), max(self.kept_ids) + 1),), -1, dtype=torch.long)
        table[torch.tensor(self.kept_ids)] = torch.arange(len(self.kept_ids))
        return table

    def _spell(self, old_id: int) -> list[int]:
        """New ids for a dropped teacher token: longest kept pieces, then bytes, then unknown."""
        if old_id in self._respell:
            return self._respell[old_id]
        piece = self.base.convert_ids_to_tokens(old_id)
        out: list[int] = []
        i = 0
        while i < len(piece):
            for j in range(min(len(piece), i + self._longest), i, -1):
                if piece[i:j] in self._pieces:
                    out.append(self.old_to_new[self._pieces[piece[i:j]]])
                    i = j
                    break
            else:
                ch = piece[i].replace("\u2581", " ")
                raw = ch.encode("utf-8")
                if self._bytes and all(b in self._bytes for b in raw):
                    out += [self.old_to_new[self._bytes[b]] for b in raw]
                elif self.unk_token_id is not None:
                    out.append(self.unk_token_id)
                else:
                    raise ValueError(f"token {piece!r} cannot be represented in the pruned vocabulary "
                                     "(no byte fallback, no unknown token)")
                i += 1
        self._respell[old_id] = out
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """New ids of ``text``: the teacher's segmentation, renumbered (dropped tokens re-spelled)."""
        ids: list[int] = []
        for old in self.base(text, add_special_tokens=add_special_tokens)["input_ids"]:
            new = self.old_to_new.get(old)
            ids += [new] if new is not None else self._spell(old)
        return ids

    def __call__(self, text: str | list[str], padding: bool | str = False, return_tensors: str | None = None,
                 add_special_tokens: bool = True, **_: Any) -> BatchEncoding:
        """Tokenise one text or a batch like a Hugging Face tokenizer (``input_ids``, ``attention_mask``)."""
        single = isinstance(text, str)
        rows = [self.encode(t, add_special_tokens) for t in ([text] if single else text)]
        masks = [[1] * len(r) for r in rows]
        if padding or return_tensors is not None and len({len(r) for r in rows}) > 1:
            if self.pad_token_id is None:
                raise ValueError("the teacher's prompt tokenizer has no pad token; pad batches yourself")
            width = max(len(r) for r in rows)
            left = self.padding_side == "left"
            for r, m in zip(rows, masks, strict=True):
                fill = width - len(r)
                r[:] = [self.pad_token_id] * fill + r if left else r + [self.pad_token_id] * fill
                m[:] = [0] * fill + m if left else m + [0] * fill
        data: dict[str, Any] = {"input_ids": rows[0] if single else rows,
                                "attention_mask": masks[0] if single else masks}
        return BatchEncoding(data, tensor_type=return_tensors)

    def to_teacher_ids(self, ids: Iterable[int]) -> list[int]:
        """New ids back to the teacher's ids."""
        return [self.kept_ids[int(i)] for i in ids]

    def decode(self, ids: Iterable[int] | torch.Tensor, skip_special_tokens: bool = False, **kw: Any) -> str:
        """Text of new ids, decoded by the teacher's tokenizer."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.base.decode(self.to_teacher_ids(ids), skip_special_tokens=skip_special_tokens, **kw)

    def batch_decode(self, batch: Iterable[Iterable[int]], **kw: Any) -> list[str]:
        return [self.decode(ids, **kw) for ids in batch]

    def save_pretrained(self, directory: str | Path) -> Path:
        """The teacher's tokenizer files plus ``pruned_vocab.json`` (the kept teacher ids, in new-id order)."""
        directory = Path(directory)
        self.base.save_pretrained(directory)
        (directory / VOCAB_FILE).write_text(json.dumps(
            {"kept_ids": self.kept_ids, "teacher_vocab_size": len(self.base), "fast": bool(self.base.is_fast),
             "note": "new id i = teacher id kept_ids[i]; load with nbhelpers.distill.vocab.PrunedTokenizer"}))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> PrunedTokenizer:
        """Load what :meth:`save_pretrained` wrote; a clear error for a plain tokenizer folder."""
        directory = Path(directory)
        vocab_file = directory / VOCAB_FILE
        if not vocab_file.is_file():
            raise FileNotFoundError(f"{vocab_file} is missing: {directory} is not a pruned prompt tokenizer "
                                    "(written by nbhelpers.distill); the student's prompt ids differ from the "
                                    "teacher's, so never load it with AutoTokenizer alone")
        info = json.loads(vocab_file.read_text())
        base = AutoTokenizer.from_pretrained(directory, use_fast=info.get("fast", True))
        return cls(base, info["kept_ids"])
