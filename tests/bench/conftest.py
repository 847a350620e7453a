"""Real speech for metric tests: espeak-ng renders a sentence once per session."""

import subprocess

import numpy as np
import pytest
import soundfile as sf

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    """(audio float32, sample rate, text) of an English sentence spoken by espeak-ng."""
    path = tmp_path_factory.mktemp("speech") / "fox.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), SENTENCE], check=True)
    audio, sr = sf.read(path, dtype="float32")
    return audio, sr, SENTENCE


@pytest.fixture
def noise(speech):
    audio, sr, _ = speech
    return np.random.default_rng(0).normal(0, 0.1, len(audio)).astype(np.float32), sr
