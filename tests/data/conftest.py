"""Fixtures for the data-prep tests: real speech from espeak-ng (cached), written in any format."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.data.audio import resample
from nbhelpers.data.corpus import SENTENCES, espeak


def speech(language: str = "kn", index: int = 0, *, rate: int = 22050, pad_s: float = 0.5) -> np.ndarray:
    """An embedded sentence spoken by espeak-ng, with ``pad_s`` of silence each side, at ``rate``."""
    audio, sr = espeak(SENTENCES[language][index], language, "m3", 40, 150)
    pad = np.zeros(int(pad_s * sr), np.float32)
    return resample(np.concatenate([pad, audio * 0.5, pad]), sr, rate)


def write(path: Path, audio: np.ndarray, rate: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, **kw)
    return path


@pytest.fixture
def make_speech():
    return speech


@pytest.fixture
def write_audio():
    return write
