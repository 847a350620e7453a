"""Scripts, grapheme-to-phoneme conversion and chunking for Kokoro.

Kokoro reads at most 510 phonemes per call. Upstream ``KPipeline`` splits non-English text only on ``[.!?]``
and then cuts the phoneme string at 510 without a word of warning (a Hindi paragraph ending its sentences
with the danda ``।`` loses everything after the cut). Here text is split into sentences (``.!?…`` and the
danda ``।``/``॥``), sentences are packed into chunks of at most 510 phonemes, an over-long sentence is split
at clause punctuation, and a clause that still does not fit raises :class:`TextTooLongError`: nothing is ever
dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .assets import MAX_PHONEMES, packaged_spacy

# language -> (KPipeline lang code, name); en-* use misaki's English G2P, the rest espeak-ng through misaki.
LANGUAGES: dict[str, tuple[str, str]] = {
    "en-us": ("a", "American English"),
    "en-gb": ("b", "British English"),
    "hi": ("h", "Hindi"),
    "es": ("e", "Spanish"),
    "fr-fr": ("f", "French"),
    "it": ("i", "Italian"),
    "pt-br": ("p", "Brazilian Portuguese"),
}
SENTENCE_END = ".!?…।॥"
CLAUSE_END = ",;:—"
PUNCTUATION = set(';:,.!?—…"()“”')
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…।॥])\s+|(?<=[.!?…।॥][\"”’')\]])\s+|(?<=[।॥])(?=\S)")
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:—])\s*")
EXAMPLE_SCRIPT = Path(__file__).with_name("example_review.md")


class TextTooLongError(ValueError):
    """A piece of text has more phonemes than Kokoro can read at once and no boundary to split it at."""


@dataclass
class Section:
    title: str
    text: str


@dataclass
class Chunk:
    """One model call: the text it covers, the phoneme string the model reads, and (English) misaki tokens."""
    text: str
    phonemes: str
    tokens: list[Any] | None = field(default=None, repr=False)


def check_language(lang: str) -> str:
    """Normalise a language code and reject unknown ones with the list of supported codes."""
    code = lang.lower().replace("_", "-")
    if code not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not supported; choose one of {', '.join(LANGUAGES)}")
    return code


def parse_script(text: str, *, source: str = "<script>") -> list[Section]:
    """Split a script into sections: a line starting with ``#`` opens a section titled by the rest of the line;
    text before the first heading becomes a section of its own; empty sections are an error."""
    sections: list[Section] = []
    title, lines = None, []

    def close() -> None:
        body = " ".join(" ".join(lines).split())
        if title is None and not body:
            return
        if not body:
            raise ValueError(f"{source}: section {title!r} has no text; add text under the heading or remove it")
        sections.append(Section(title or f"Section {len(sections) + 1}", body))

    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            close()
            title, lines = line.lstrip().lstrip("#").strip() or f"Section {len(sections) + 1}", []
        else:
            lines.append(line.strip())
    close()
    if not sections:
        raise ValueError(f"{source}: the script is empty")
    return sections


def load_script(path: str | Path | None = None) -> tuple[list[Section], str]:
    """Read a script file (the shipped product review when ``path`` is None or 'example')."""
    p = EXAMPLE_SCRIPT if path in (None, "", "example") else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"script {p} does not exist; pass a UTF-8 text file or 'example'")
    return parse_script(p.read_text(encoding="utf-8"), source=str(p)), str(p)


def split_sentences(text: str) -> list[str]:
    """Sentences of a text, ending at . ! ? … or the Devanagari danda (with or without a following space)."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


def _english_fallback(british: bool):
    """misaki's espeak fallback for English words its lexicon lacks, with espeak's language-switch flags removed:
    upstream keeps them, so a Kannada word in English text came back as ``(kn)...(en-us)`` and the marker letters
    were read as phonemes. The word is phonemised by the other language's rules, as ``EspeakG2P`` does."""
    from misaki import espeak
    from phonemizer.backend import EspeakBackend

    fallback = espeak.EspeakFallback(british=british)
    fallback.backend = EspeakBackend(language=f"en-{'gb' if british else 'us'}", preserve_punctuation=True,
                                     with_stress=True, tie="^", language_switch="remove-flags")
    return fallback


@cache
def g2p_for(lang: str):
    """misaki's G2P for a language, built once: English with the packaged spaCy model and espeak fallback;
    other languages through espeak-ng (language-switch flags removed in both)."""
    from misaki import en, espeak

    code = check_language(lang)
    if code.startswith("en-"):
        british = code == "en-gb"
        with packaged_spacy():
            return en.G2P(trf=False, british=british, fallback=_english_fallback(british), unk="")
    return espeak.EspeakG2P(language=code)


def tokens_to_phonemes(tokens: list[Any]) -> str:
    """The phoneme string Kokoro reads for a list of misaki tokens (the same joining KPipeline uses)."""
    return "".join((t.phonemes or "") + (" " if t.whitespace else "") for t in tokens).strip()


def _pack(pieces: list[Any], size, join, limit: int) -> list[list[Any]]:
    """Greedily group consecutive pieces while the joined phoneme length stays within the limit."""
    groups: list[list[Any]] = []
    for piece in pieces:
        if groups and size(join(groups[-1] + [piece])) <= limit:
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def _token_groups(tokens: list[Any], ends: str) -> list[list[Any]]:
    """Split misaki tokens after each token whose text or phonemes end a sentence/clause."""
    groups, current = [], []
    for tok in tokens:
        current.append(tok)
        mark = (tok.phonemes or tok.text or "")[-1:]
        if mark and mark in ends:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _english_chunks(text: str, lang: str, limit: int, where: str) -> list[Chunk]:
    _, tokens = g2p_for(lang)(text)
    pieces: list[list[Any]] = []
    for sentence in _token_groups(tokens, SENTENCE_END):
        if len(tokens_to_phonemes(sentence)) <= limit:
            pieces.append(sentence)
            continue
        for clause in _token_groups(sentence, CLAUSE_END):
            n = len(tokens_to_phonemes(clause))
            if n > limit:
                raise TextTooLongError(
                    f"{where}: a clause has {n} phonemes (Kokoro reads at most {limit}) and no sentence or clause "
                    f"boundary to split at: {''.join(t.text + t.whitespace for t in clause)[:80]!r}... "
                    "Add punctuation (. , ;) to break it up.")
            pieces.append(clause)
    groups = _pack(pieces, len, lambda g: tokens_to_phonemes([t for p in g for t in p]), limit)
    chunks = []
    for group in groups:
        toks = [t for piece in group for t in piece]
        ps = tokens_to_phonemes(toks)
        if ps:
            chunks.append(Chunk("".join(t.text + t.whitespace for t in toks).strip(), ps, toks))
    return chunks


def _espeak_phonemes(text: str, lang: str) -> str:
    ps, _ = g2p_for(lang)(text)
    ps = (ps or "").strip()
    if ps and text.rstrip()[-1:] in "।॥" and ps[-1] not in PUNCTUATION:
        ps += "."  # espeak drops the danda; a full stop keeps the sentence-final fall and pause
    return ps


def _espeak_chunks(text: str, lang: str, limit: int, where: str) -> list[Chunk]:
    pieces: list[tuple[str, str]] = []
    for sentence in split_sentences(text):
        ps = _espeak_phonemes(sentence, lang)
        if len(ps) <= limit:
            pieces.append((sentence, ps))
            continue
        for clause in (c for c in _CLAUSE_SPLIT.split(sentence) if c.strip()):
            cps = _espeak_phonemes(clause, lang)
            if len(cps) > limit:
                raise TextTooLongError(
                    f"{where}: a clause has {len(cps)} phonemes (Kokoro reads at most {limit}) and no sentence or "
                    f"clause boundary to split at: {clause[:80]!r}... Add punctuation (। . ,) to break it up.")
            pieces.append((clause, cps))
    groups = _pack(pieces, len, lambda g: " ".join(p for _, p in g), limit)
    return [Chunk(" ".join(t for t, _ in g), " ".join(p for _, p in g if p)) for g in groups
            if any(p for _, p in g)]


def chunk_text(text: str, lang: str = "en-us", *, limit: int = MAX_PHONEMES, where: str = "text") -> list[Chunk]:
    """Phonemize text and cut it into model-sized chunks at sentence (then clause) boundaries, never truncating."""
    code = check_language(lang)
    text = " ".join(text.split())
    if not text:
        return []
    if code.startswith("en-"):
        return _english_chunks(text, code, limit, where)
    return _espeak_chunks(text, code, limit, where)


def spoken_phoneme_count(phonemes: str) -> int:
    """Phonemes that produce sound (spaces and punctuation excluded): what must survive chunking intact."""
    return sum(1 for c in phonemes if not c.isspace() and c not in PUNCTUATION)
