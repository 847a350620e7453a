"""Mixed Kannada/English text through Kokoro's real G2P (misaki + espeak-ng): espeak's language-switch markers
(``(kn)``, ``(en-us)``, which misaki's English fallback mangles into ``(An-us)``) never reach the phoneme string
the model reads; the Kannada words are still pronounced."""

from __future__ import annotations

import re

import pytest

from nbhelpers.kokoro.text import chunk_text, g2p_for, spoken_phoneme_count

MARKER = re.compile(r"\([A-Za-z\u0250-\u02af]{1,3}(-[A-Za-z\u0250-\u02af0-9]+)?\)")  # (kn), (en-us), (An-us), (ɹu)
MIXED = {
    "en-us": "Hello ನಮಸ್ಕಾರ world. This is ಕನ್ನಡ text, and ಬೆಂಗಳೂರು is a city.",
    "en-gb": "ನಮಸ್ಕಾರ, my friend. We speak ಕನ್ನಡ at home.",
    "hi": "यह किताब है. This is a book. ಇದು ಪುಸ್ತಕ.",
}


@pytest.mark.parametrize("lang", sorted(MIXED))
def test_no_language_marker_reaches_the_phonemes(lang):
    chunks = chunk_text(MIXED[lang], lang)
    phonemes = " ".join(c.phonemes for c in chunks)
    assert "(" not in phonemes and ")" not in phonemes, phonemes  # the text has no parentheses
    assert not MARKER.search(phonemes), phonemes
    assert not re.search(r"\b(kn|en|An)\b", phonemes), phonemes


def test_kannada_words_in_english_text_are_pronounced():
    g2p = g2p_for("en-us")
    _, tokens = g2p("We speak ಕನ್ನಡ at home.")
    word = next(t for t in tokens if t.text == "ಕನ್ನಡ")
    assert word.phonemes and spoken_phoneme_count(word.phonemes) >= 5, word.phonemes
    assert "(" not in word.phonemes
    # the same word alone: its phonemes are the ones used inside the sentence (no marker text added around them)
    alone = " ".join(c.phonemes for c in chunk_text("ಕನ್ನಡ", "en-us"))
    assert alone.strip(" .") == word.phonemes


def test_parentheses_written_in_the_text_are_kept():
    phonemes = " ".join(c.phonemes for c in chunk_text("This is ಕನ್ನಡ (really).", "en-us"))
    assert phonemes.count("(") == 1 and phonemes.count(")") == 1 and not MARKER.search(phonemes), phonemes
