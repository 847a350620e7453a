"""The samples contract: every trainer (02, 03, 04, 07, 08) writes ``samples.jsonl`` beside its sample WAVs, one
line per clip with the text, the WAV (relative to the file), the state of the model that spoke it and the clip's
seconds. Stage records name it as ``outputs["samples"]``; notebooks and stage 06 read it with :func:`read_samples`
instead of counting files or parsing names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SAMPLES_FILE = "samples.jsonl"
REQUIRED = ("text", "path", "model_state", "seconds")
PATHS = ("path", "recording")  # stored relative to the file: the clip, and the real recording of its text if any


def write_wav(path: str | os.PathLike, audio: Any, sr: int) -> Path:
    """Write one clip (float samples clipped to [-1, 1]) atomically: a temporary file in the same folder, then a
    rename, so a reader (a notebook following a stream, a killed run's successor) never sees half a file."""
    import numpy as np
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.wav")
    sf.write(tmp, np.clip(audio, -1, 1), sr)
    tmp.replace(path)
    return path


def sample_row(text: str, wav: str | os.PathLike, model_state: str, **extra: Any) -> dict[str, Any]:
    """One clip of the contract: its text, WAV, the model's state ("random weights", "base model", "after 120 steps
    fine-tuned from ...") and its length in seconds (read from the file); ``extra`` adds stage fields (description,
    voice, the real ``recording`` of the text)."""
    import soundfile as sf

    info = sf.info(str(wav))
    return {"text": text, "path": str(wav), "model_state": model_state,
            "seconds": round(info.frames / info.samplerate, 3), **extra}


def write_samples(rows: list[dict[str, Any]], folder: str | os.PathLike) -> Path:
    """``folder/samples.jsonl`` with each row's WAV stored relative to ``folder`` (a moved or attached copy still
    resolves), written to a temporary name and renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise ValueError(f"sample row {row} lacks {missing}: build rows with nbhelpers.samples.sample_row")
        stored = {k: os.path.relpath(row[k], folder) if Path(row[k]).is_absolute() else str(row[k])
                  for k in PATHS if row.get(k)}
        lines.append(json.dumps({**row, **stored}, ensure_ascii=False))
    path = folder / SAMPLES_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_samples(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``samples.jsonl`` (or of the one inside a folder) with absolute WAV paths; a malformed line or
    a missing WAV is an error naming the file, the line and the fix."""
    path = Path(path)
    if path.is_dir():
        path = path / SAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the stage that trained the model writes it with its samples; "
                                "run that stage (or its notebook) to the end first")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not JSON ({err.msg}); the file is damaged: run the stage again") from err
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise ValueError(f"{path}:{n}: lacks {missing}; the file was not written by nbhelpers.samples: "
                             "run the stage again")
        found = {k: (path.parent / row[k]).resolve() for k in PATHS if row.get(k)}
        for wav in found.values():
            if not wav.is_file():
                raise FileNotFoundError(f"{path}:{n}: {wav} is missing; copy the whole samples folder, or run the "
                                        "stage again")
        rows.append({**row, **{k: str(v) for k, v in found.items()}})
    return rows
