"""Fast checks without audio: script parsing, sentence splitting, chunking limits, voice blending, speed."""

import numpy as np
import pytest

from nbhelpers.kokoro.assets import offline_voices
from nbhelpers.kokoro.text import (
    TextTooLongError,
    chunk_text,
    load_script,
    parse_script,
    split_sentences,
    spoken_phoneme_count,
)
from nbhelpers.kokoro.voices import blend_packs, check_speed, parse_voice_spec, validate_blend


def test_parse_script_sections_and_errors():
    secs = parse_script("Intro text.\n# Design\nLight.\nSoft.\n\n## Verdict\nBuy it.")
    assert [(s.title, s.text) for s in secs] == [("Section 1", "Intro text."), ("Design", "Light. Soft."),
                                                 ("Verdict", "Buy it.")]
    with pytest.raises(ValueError, match="'Empty' has no text"):
        parse_script("# Empty\n# Full\ntext", source="x.md")
    with pytest.raises(ValueError, match="empty"):
        parse_script("\n \n")
    sections, source = load_script("example")
    assert len(sections) >= 4 and source.endswith("example_review.md")


def test_split_sentences_handles_danda_and_quotes():
    assert split_sentences('He said "hi." Then left. नमस्ते।आप कैसे हैं। ठीक॥ Wow?! ok') == [
        'He said "hi."', "Then left.", "नमस्ते।", "आप कैसे हैं।", "ठीक॥", "Wow?!", "ok"]


def test_english_chunks_stay_under_limit_and_keep_every_word():
    text = " ".join(f"Sentence number {w} is here, and it keeps going for a while." for w in
                    ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"])
    chunks = chunk_text(text, "en-us")
    assert len(chunks) >= 2 and all(len(c.phonemes) <= 510 for c in chunks)
    assert " ".join(c.text for c in chunks) == text  # cut at sentence boundaries, nothing lost
    assert all(c.text.endswith(".") for c in chunks)


def test_british_and_american_differ():
    us = chunk_text("I can't dance after the tomato harvest.", "en-us")[0].phonemes
    gb = chunk_text("I can't dance after the tomato harvest.", "en-gb")[0].phonemes
    assert us != gb


def test_unsplittable_text_is_an_error_not_a_truncation():
    with pytest.raises(TextTooLongError, match="no sentence or clause boundary"):
        chunk_text(" ".join(["बहुत"] * 200), "hi", where="section 3")
    with pytest.raises(TextTooLongError, match="section 2"):
        chunk_text(" ".join(["wonderful"] * 120), "en-us", where="section 2")


def test_long_sentence_is_split_at_clauses():
    text = ", ".join(["the quick brown fox jumps over the lazy dog"] * 14) + "."
    chunks = chunk_text(text, "en-us")
    assert len(chunks) >= 2 and all(len(c.phonemes) <= 510 for c in chunks)
    whole = sum(spoken_phoneme_count(c.phonemes) for c in chunks)
    assert whole == 14 * spoken_phoneme_count(chunk_text("the quick brown fox jumps over the lazy dog", "en-us")[0].phonemes)


@pytest.mark.parametrize("spec, message", [
    ("jf_alpha:-1", "> 0"), ("jf_alpha:0", "> 0"), ("jf_alpha:nan", "finite"), ("jf_alpha:inf", "finite"),
    ("jf_alpha:abc", "must be a number"), ("jf_alpha:", "missing weight"), ("jf_alpha:1,jf_alpha:2", "twice"),
    (":0.5", "empty voice name"), ("", "voice must be"), ("af_nobody", "unknown voice"),
    ({"jf_alpha": -0.2}, "> 0"),
])
def test_blend_weights_are_validated(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_blend(spec, offline_voices())


def test_blend_is_normalised_weighted_mean():
    voices = offline_voices()
    weights = validate_blend("jf_alpha:3, jf_nezumi:1", voices)
    assert weights == {"jf_alpha": 0.75, "jf_nezumi": 0.25}
    pack = blend_packs(weights, voices.__getitem__)
    np.testing.assert_allclose(pack, 0.75 * voices["jf_alpha"] + 0.25 * voices["jf_nezumi"], rtol=1e-6)
    assert parse_voice_spec("jf_alpha") == {"jf_alpha": 1.0}


def test_speed_range():
    assert check_speed(1.3) == 1.3
    for bad in (0.2, 2.5, float("nan")):
        with pytest.raises(ValueError, match="speed"):
            check_speed(bad)
