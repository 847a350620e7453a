"""Fixtures for stage 07: a tiny Kannada corpus spoken by espeak-ng (two voices) in the pocket manifest
layout data prep writes (``pocket/train.json``, ``validation.json``, 24 kHz wavs), so these tests do not
depend on stage 01 having run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SENTENCES = [
    "ನಮಸ್ಕಾರ.", "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ.", "ಇಂದು ಮಳೆ ಬಂತು.", "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ.", "ಅವನು ಪುಸ್ತಕ ಓದುತ್ತಾನೆ.",
    "ಹಕ್ಕಿ ಹಾರುತ್ತದೆ.", "ನೀರು ಕುಡಿಯಿರಿ.", "ಮಕ್ಕಳು ಆಟ ಆಡುತ್ತಾರೆ.", "ಹೂವು ಅರಳಿದೆ.", "ರೈಲು ಬಂತು.",
]


def make_pocket_corpus(root: Path, n_train: int = 8, language: str = "kn", n_test: int = 0) -> Path:
    """Write ``root/train.json`` + ``validation.json`` (+ ``test.json`` with ``n_test`` rows, taken from the
    validation rows) and ``root/wavs/*.wav`` (24 kHz mono) in ``language`` (kn, or bn from data prep's embedded
    corpus); returns root."""
    import soxr

    from nbhelpers.data.corpus import SENTENCES as EMBEDDED

    wavs = root / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(SENTENCES if language == "kn" else EMBEDDED[language][:len(SENTENCES)]):
        voice, speaker = (language, "spk_f") if i % 2 == 0 else (f"{language}+m3", "spk_m")
        raw = wavs / f"raw_{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "175", "-w", str(raw), text], check=True, capture_output=True)
        audio, sr = sf.read(raw, dtype="float32")
        raw.unlink()
        audio = soxr.resample(audio, sr, 24000).astype(np.float32)
        sf.write(wavs / f"u{i}.wav", 0.5 * audio / max(1e-6, float(np.abs(audio).max())), 24000)
        rows.append({"audio_path": f"wavs/u{i}.wav", "text": text, "language": language,
                     "duration": len(audio) / 24000, "speaker": speaker, "id": f"u{i}"})
    (root / "train.json").write_text(json.dumps(rows[:n_train], ensure_ascii=False))
    (root / "validation.json").write_text(json.dumps(rows[n_train:], ensure_ascii=False))
    if n_test:
        (root / "test.json").write_text(json.dumps(rows[n_train:n_train + n_test], ensure_ascii=False))
    return root


@pytest.fixture(scope="session")
def pocket_corpus(tmp_path_factory) -> Path:
    """Folder with train.json (8 rows) and validation.json (2 rows); built once per session."""
    return make_pocket_corpus(tmp_path_factory.mktemp("kn_pocket"))


@pytest.fixture(scope="session")
def bn_pocket_corpus(tmp_path_factory) -> Path:
    """A Bangla corpus in the same layout (8 train, 2 validation, 1 test row), for multi-language runs."""
    return make_pocket_corpus(tmp_path_factory.mktemp("bn_pocket"), language="bn", n_test=1)


@pytest.fixture
def small_cfg():
    """Build the smoke profile with test-sized settings (keyword arguments override more)."""
    from nbhelpers.profiles import load_profile

    def make(**changes):
        base = {"batch_size": 4, "max_steps": 10, "save_every": 0, "warmup_steps": 2, "voice_prompt_frames": 12,
                "eval_items": 0}
        return load_profile("pocket", "smoke", {**base, **changes})
    return make


@pytest.fixture
def sentences() -> list[str]:
    return list(SENTENCES)
