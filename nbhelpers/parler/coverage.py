"""Can the prompt tokenizer represent the training transcripts? Checked before any training: the share of
unknown tokens, the share of byte-fallback tokens (SentencePiece ``<0xE0>``-style pieces, or every token of
a byte-level tokenizer) and whether decoding gives the text back."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def tokenizer_coverage(tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    """Counts over ``texts``: tokens, unknown and byte-fallback shares, tokens per character, texts that do
    not round-trip, and the characters that became unknown tokens (most frequent first)."""
    byte_level = tokenizer.__class__.__name__.startswith("ByT5")
    unk_id = tokenizer.unk_token_id
    tokens = unk = byte = chars = 0
    bad_texts, unknown_chars = [], Counter()
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        pieces = tokenizer.convert_ids_to_tokens(ids)
        tokens, chars = tokens + len(ids), chars + len(text)
        n_unk = sum(1 for i in ids if unk_id is not None and i == unk_id)
        unk += n_unk
        byte += len(ids) if byte_level else sum(1 for p in pieces if _BYTE_PIECE.match(p or ""))
        if n_unk:
            unknown_chars.update(ch for ch in text if tokenizer(ch, add_special_tokens=False).input_ids == [unk_id]
                                 or unk_id in tokenizer(ch, add_special_tokens=False).input_ids)
        if _normal(tokenizer.decode(ids, skip_special_tokens=True)) != _normal(text):
            bad_texts.append(text)
    return {"texts": len(texts), "tokens": tokens, "unknown_share": unk / max(tokens, 1),
            "byte_fallback_share": byte / max(tokens, 1), "tokens_per_char": tokens / max(chars, 1),
            "byte_level": byte_level, "not_round_trip": len(bad_texts), "examples_not_round_trip": bad_texts[:3],
            "unknown_chars": "".join(c for c, _ in unknown_chars.most_common(20))}


def check_prompt_coverage(tokenizer: Any, texts: list[str], *, max_unknown_share: float = 0.01,
                          max_not_round_trip: float = 0.02) -> dict[str, Any]:
    """:func:`tokenizer_coverage`, raising a clear error when the prompt tokenizer cannot represent the
    transcripts (too many unknown tokens, or text that does not decode back)."""
    if not texts:
        raise ValueError("no transcripts to check: the training split is empty")
    report = tokenizer_coverage(tokenizer, texts)
    if report["unknown_share"] > max_unknown_share or report["not_round_trip"] > max_not_round_trip * len(texts):
        raise ValueError(
            f"the prompt tokenizer ({tokenizer.__class__.__name__}, {getattr(tokenizer, 'name_or_path', '')}) "
            f"cannot represent these transcripts: {report['unknown_share']:.1%} unknown tokens, "
            f"{report['not_round_trip']} of {len(texts)} texts do not decode back (e.g. "
            f"{report['examples_not_round_trip'][:1]}); unknown characters: {report['unknown_chars']!r}. "
            "Use a model whose prompt tokenizer covers Kannada (ai4bharat/indic-parler-tts, or a byte-fallback "
            "tokenizer), or fix the text normalisation in data prep.")
    return report
