"""Checkpoints that are either complete or invisible.

A checkpoint is a folder ``step-<N>`` holding any files plus ``COMPLETE.json`` (step, metadata and the
sha256 of every file). It is written under a temporary name, every file and the folder are fsynced, the
marker is written last, and only then is the folder renamed into place, so a process killed at any
moment leaves either the previous checkpoints or the new complete one. Loading verifies the marker and the
hashes and skips anything partial or corrupt with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .paths import sha256_file

MARKER = "COMPLETE.json"
PREFIX = "step-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:09d}"


def save_checkpoint(directory: str | os.PathLike, step: int, write: Callable[[Path], None],
                    meta: dict[str, Any] | None = None, keep: int | None = 3) -> Path:
    """Atomically write checkpoint ``step`` into ``directory``.

    ``write(folder)`` puts whatever the stage needs into ``folder`` (torch.save files, accelerate's
    save_state, a coqui checkpoint...). Keeps the newest ``keep`` complete checkpoints (None keeps all).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    tmp = directory / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    hashes = {}
    for f in _files(tmp):
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
        hashes[str(f.relative_to(tmp))] = sha256_file(f)
    marker = {"step": step, "time": time.time(), "files": hashes, "meta": meta or {}}
    with (tmp / MARKER).open("w") as fh:
        json.dump(marker, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    for sub in sorted({p.parent for p in tmp.rglob("*")}, key=lambda p: -len(p.parts)):
        _fsync_dir(sub)
    if final.exists():  # re-saving the same step (e.g. a budget stop right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(directory)
    if keep is not None:
        prune_checkpoints(directory, keep)
    return final


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def verify_checkpoint(folder: str | os.PathLike, *, hashes: bool = True) -> str | None:
    """None when ``folder`` is a complete checkpoint, else the reason it is not."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None:
        return f"{MARKER} missing or unreadable (save was interrupted)"
    for rel, digest in marker.get("files", {}).items():
        f = folder / rel
        if not f.is_file():
            return f"file {rel} listed in {MARKER} is missing"
        if hashes and sha256_file(f) != digest:
            return f"file {rel} does not match its recorded sha256 (corrupt or modified)"
    return None


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint folders under ``directory`` (complete or not), oldest first by step."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]) if p.name[len(PREFIX):].isdigit() else -1)


def latest_checkpoint(directories: str | os.PathLike | Iterable[str | os.PathLike]) -> Path | None:
    """The complete checkpoint with the highest step across ``directories`` (e.g. the workspace and a
    checkpoint attached from a previous Kaggle session); partial or corrupt ones are skipped with a warning."""
    if isinstance(directories, (str, os.PathLike)):
        directories = [directories]
    best: tuple[int, Path] | None = None
    for directory in directories:
        for folder in reversed(list_checkpoints(directory)):
            problem = verify_checkpoint(folder)
            if problem:
                warnings.warn(f"skipping checkpoint {folder}: {problem}", stacklevel=2)
                continue
            step = read_marker(folder)["step"]
            if best is None or step > best[0]:
                best = (step, folder)
            break  # newest complete one in this directory found
    return best[1] if best else None


def prune_checkpoints(directory: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints, and stale temporary folders of dead saves."""
    directory = Path(directory)
    removed = []
    complete = [p for p in list_checkpoints(directory) if verify_checkpoint(p, hashes=False) is None]
    for old in complete[:-keep] if keep > 0 else complete:
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    for tmp in directory.glob(".tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
