"""A SentencePiece vocabulary for the new language, trained on the training transcripts (BPE, full
character coverage), and a report of how well it covers a set of texts."""

from __future__ import annotations

import collections
import io
import re
import unicodedata
from pathlib import Path
from typing import Any


def train_sentencepiece(texts: list[str], out_dir: str | Path, vocab_size: int, *, name: str = "tokenizer",
                        model_type: str = "bpe") -> Path:
    """Train a SentencePiece model on ``texts`` and write ``<out_dir>/<name>.model`` (atomic replace).

    The vocabulary may come out smaller than ``vocab_size`` on a tiny corpus (``hard_vocab_limit`` off):
    the model's own ``vocab_size()`` is what the Pocket TTS config's ``n_bins`` must be set to.
    """
    import sentencepiece as spm

    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("no transcripts to train the tokenizer on: the training manifest has no text")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto = io.BytesIO()
    try:
        _train(spm, texts, proto, vocab_size, model_type)
    except RuntimeError as err:
        found = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(err))
        if found is None:
            raise
        raise ValueError(f"vocab_size {vocab_size} is too small for the {int(found[2]) - 1} distinct characters of "
                         f"these transcripts: set vocab_size to at least {found[2]}") from err
    final = out_dir / f"{name}.model"
    tmp = out_dir / f".{name}.model.tmp"
    tmp.write_bytes(proto.getvalue())
    tmp.replace(final)
    return final


def _train(spm: Any, texts: list[str], proto: io.BytesIO, vocab_size: int, model_type: str) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=proto, vocab_size=int(vocab_size), model_type=model_type,
        character_coverage=1.0, hard_vocab_limit=False, byte_fallback=False, unk_id=0, bos_id=-1, eos_id=-1,
        pad_id=-1, normalization_rule_name="identity", split_digits=True,
        num_threads=1, minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False)


def coverage_report(model_path: str | Path, texts: list[str]) -> dict[str, Any]:
    """Vocabulary size, tokens per character/utterance, and the characters the model cannot represent
    (they become the unknown piece): a new-language tokenizer should cover its own transcripts fully."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    unk = sp.unk_id()
    chars = tokens = unknown_tokens = 0
    missing: collections.Counter[str] = collections.Counter()
    lengths = []
    for text in texts:
        ids = sp.encode(text, out_type=int)
        tokens += len(ids)
        lengths.append(len(ids))
        chars += len(text)
        if unk in ids:
            unknown_tokens += ids.count(unk)
            for ch in set(text):
                if ch != " " and sp.encode(ch, out_type=int).count(unk):
                    missing[ch] += text.count(ch)
    scripts = collections.Counter(unicodedata.name(c, "?").split(" ")[0] for t in texts for c in t if not c.isspace())
    return {
        "vocab_size": sp.vocab_size(),
        "utterances": len(texts),
        "characters": chars,
        "tokens": tokens,
        "tokens_per_char": round(tokens / max(chars, 1), 4),
        "tokens_per_utterance_mean": round(tokens / max(len(texts), 1), 2),
        "tokens_per_utterance_max": max(lengths, default=0),
        "unknown_token_share": round(unknown_tokens / max(tokens, 1), 6),
        "missing_characters": dict(missing.most_common()),
        "character_coverage": round(1 - sum(missing.values()) / max(chars, 1), 6),
        "scripts": dict(scripts.most_common(5)),
    }


def merge_sentencepiece(models: list[str | Path], out: str | Path) -> Path:
    """One SentencePiece model holding the pieces of ``models`` (one per language, each trained with its own
    settings): the first model's pieces as they are, then every other model's new pieces with their scores shifted
    below all earlier ones, so each language's merges keep their own order. Pocket TTS reads one tokenizer, so a
    multi-language run trains on (and generates with) the merged vocabulary; written atomically."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    merged = pb.ModelProto()
    merged.ParseFromString(Path(models[0]).read_bytes())
    seen = {p.piece for p in merged.pieces}
    for path in models[1:]:
        other = pb.ModelProto()
        other.ParseFromString(Path(path).read_bytes())
        new = [p for p in other.pieces if p.type == pb.ModelProto.SentencePiece.NORMAL and p.piece not in seen]
        if not new:
            continue
        shift = min(p.score for p in merged.pieces) - max(p.score for p in new) - 1.0
        for piece in new:
            merged.pieces.add(piece=piece.piece, score=piece.score + shift, type=piece.type)
            seen.add(piece.piece)
    merged.trainer_spec.vocab_size = len(merged.pieces)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(merged.SerializeToString())
    tmp.replace(out)
    return out
