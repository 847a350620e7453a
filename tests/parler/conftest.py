"""Fixtures for the Parler stage: a small Kannada dataset (espeak-ng speech, 44.1 kHz) in the layout data
prep writes, so these tests do not depend on stage 01 having run."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from parler_settings import OVERRIDES, SENTENCES

DESCRIPTIONS = ["A female speaker talks slowly in a quiet room.", "A male speaker talks quickly with a clear voice."]


def _speak(text: str, voice: str, folder: Path, i: int) -> Path:
    path = folder / f"u{i}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "170", "-w", str(path), text], check=True, capture_output=True)
    return path


def make_dataset(root: Path, n_train: int = 12, n_val: int = 4) -> Path:
    """Save a DatasetDict(train/validation/test) like data prep's ``parler/`` folder under ``root``."""
    import datasets
    import soxr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_train + 2 * n_val):
            text = SENTENCES[i % len(SENTENCES)]
            voice = "kn" if i % 2 == 0 else "kn+m3"
            audio, sr = sf.read(_speak(text, voice, Path(tmp), i), dtype="float32")
            audio = soxr.resample(audio, sr, 44100).astype(np.float32)
            rows.append({"id": f"kn_{i:03d}", "audio": {"array": audio, "sampling_rate": 44100}, "text": text,
                         "text_description": DESCRIPTIONS[i % 2], "speaker": f"spk{i % 2}",
                         "duration": len(audio) / 44100})
    features = datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=44100),
                                  "text": datasets.Value("string"), "text_description": datasets.Value("string"),
                                  "speaker": datasets.Value("string"), "duration": datasets.Value("float32")})
    cut = {"train": rows[:n_train], "validation": rows[n_train:n_train + n_val], "test": rows[n_train + n_val:]}
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=features) for k, v in cut.items()})
    dd.save_to_disk(str(root))
    return root


@pytest.fixture(scope="session")
def kn_dataset_dir(tmp_path_factory) -> Path:
    """Path of a saved 12/4/4-row Kannada DatasetDict (session-wide: built once)."""
    return make_dataset(tmp_path_factory.mktemp("kn") / "parler")


# Settings shared by the training tests: the T5 encoder is trained too, so its dropout draws random numbers
# and an exact resume really depends on the restored RNG state.


@pytest.fixture(scope="session")
def parler_ws(tmp_path_factory) -> Path:
    """One workspace for the training tests: the tiny base model and the code cache are built once."""
    return tmp_path_factory.mktemp("parler_ws")


@pytest.fixture(scope="session")
def reference_run(parler_ws, kn_dataset_dir):
    """An uninterrupted 12-step full fine-tune (coverage, training, export, record), run in-process."""
    from nbhelpers.parler.stage import run_stage
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    cfg = load_profile("parler", "smoke", OVERRIDES)
    result, outputs = run_stage(cfg, workspace=Workspace(parler_ws), dataset=str(kn_dataset_dir), run="reference")
    return result, outputs, cfg
