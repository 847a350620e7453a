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


def espeak_wav(path, text, voice="en-us", speed=175):
    """Write ``text`` spoken by espeak-ng (``voice``, words per minute ``speed``) to ``path``; returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def prepared_dataset(ws, name, rows):
    """A minimal complete prepared dataset ``<ws>/data/<name>/`` (manifest + PREPARED.json) holding ``rows``
    of (split, text, wav path): enough for the benchmark's test texts and reference recordings."""
    import json

    root = ws.root / "data" / name
    root.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"u{i}", "split": split, "text": text, "audio_path": str(wav), "language": "kn"},
                        ensure_ascii=False) for i, (split, text, wav) in enumerate(rows)]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "PREPARED.json").write_text("{}")
    return root


@pytest.fixture
def say():
    """:func:`espeak_wav`: real speech of any text and espeak-ng voice."""
    return espeak_wav


@pytest.fixture
def dataset_with():
    """:func:`prepared_dataset`: a prepared dataset of given (split, text, wav) rows."""
    return prepared_dataset
