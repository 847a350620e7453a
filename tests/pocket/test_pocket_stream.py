"""Pocket streaming (nbhelpers.pocket.stream): the chunks, joined, are the utterance the one-shot call speaks with the
same seed; their timing is recorded (first audio before the end); a consumer that stops after the first chunk
leaves no generation thread behind; an empty text is refused. Tiny random-weight model (smoke): mechanics only."""

import threading
import time

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny(pocket_corpus):
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.profiles import load_profile

    corpus = pocket_corpus
    cfg = load_profile("pocket", "smoke", {"batch_size": 4, "max_steps": 2, "save_every": 0, "warmup_steps": 1,
                                           "voice_prompt_frames": 12})
    prep = prepare(cfg, workspace=None, dataset=str(corpus), run="stream")
    return prep.tts_model, corpus / "wavs" / "u8.wav"


def test_chunks_join_into_the_one_shot_utterance_and_are_timed(tiny):
    from nbhelpers.pocket.model import synthesize
    from nbhelpers.pocket.stream import PocketStream

    model, voice = tiny
    text = "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ."
    whole = synthesize(model, [text], voice, seed=3)[0]
    speaker = PocketStream(model, voice)
    chunks = list(speaker.stream(text, seed=3))
    assert len(chunks) >= 2  # really chunked, not one block at the end
    joined = np.concatenate(chunks)
    assert joined.shape == whole.shape and np.max(np.abs(joined - np.clip(whole, -1, 1))) < 1e-5
    t = speaker.timing
    assert 0 < t.first_audio_s <= t.total_s
    assert len(t.chunk_seconds) == len(chunks) and abs(t.audio_s - len(joined) / speaker.sample_rate) < 1e-6


def test_stopping_early_ends_the_generation_and_empty_text_is_refused(tiny):
    from nbhelpers.pocket.stream import PocketStream

    model, voice = tiny
    speaker = PocketStream(model, voice)
    before = threading.active_count()
    for _ in speaker.stream("ಇಂದು ಮಳೆ ಬಂತು. ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ. ಹಕ್ಕಿ ಹಾರುತ್ತದೆ.", seed=0):
        break
    deadline = time.time() + 10
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before
    assert speaker.timing.first_audio_s is not None and speaker.timing.total_s is None  # stopped, never finished
    with pytest.raises(ValueError, match="text is empty"):
        next(speaker.stream("  "))
