"""Checkpoints that are either complete or invisible.

A checkpoint is a folder ``step-<N>`` holding any files plus ``COMPLETE.json`` (step, metadata and the
sha256 of every file). It is written under a temporary name, every file and the folder are fsynced, the
marker is written last, and only then is the folder renamed into place, so a process killed at any
moment leaves either the previous checkpoints or the new complete one. Loading verifies the marker and the
hashes and skips anything partial or corrupt with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .paths import sha256_file

MARKER = "COMPLETE.json"
PREFIX = "step-"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # disk full, or the user's quota on it
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class ExplainedOSError(OSError):
    """An OSError (``errno`` kept) whose text is the full explanation alone, without the ``[Errno N]`` prefix."""

    def __str__(self) -> str:
        return str(self.strerror)


class DiskFullError(ExplainedOSError):
    """A checkpoint or export write ran out of space (ENOSPC or EDQUOT); the message says where, how much, what is
    intact and what to do."""


class NotWritableError(ExplainedOSError):
    """The workspace (or a folder in it) cannot be written; raised before any training time is spent."""


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
    with out_of_space(f"checkpoint {final.name}", directory, cleanup=tmp, checkpoints=directory):
        tmp.mkdir()
        write(tmp)
        _seal(tmp, step, meta)
        if final.exists():  # re-saving the same step (e.g. a budget stop right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(directory)
    if keep is not None:
        prune_checkpoints(directory, keep)
    return final


def _seal(tmp: Path, step: int, meta: dict[str, Any] | None) -> None:
    """fsync every file of ``tmp``, then write the marker with their sha256 and fsync the folders."""
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


def folder_bytes(path: str | os.PathLike) -> int:
    """Total size of the files under ``path`` (0 when it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_full_message(what: str, path: str | os.PathLike, *, needed: int, last: Path | None) -> str:
    """The one explanation a full disk gets: where, roughly how much was needed vs free, which complete checkpoint
    (``last``) is intact, and what to do."""
    path = Path(path)
    free = shutil.disk_usage(_existing(path)).free
    intact = (f"The last complete checkpoint, {last.name} in {last.parent}, is intact; the partial write was removed."
              if last is not None else "No complete checkpoint exists yet; the partial write was removed.")
    return (f"Disk full while writing {what} to {path}: about {_mb(needed)} needed, {_mb(free)} free on that disk. "
            f"{intact} Fix: free space on that disk (old runs, exports, caches) or point the workspace at a bigger "
            f"disk (--workspace DIR or TTS_WORKSPACE), then rerun the same command: it resumes from "
            f"{last.name if last is not None else 'the start'}.")


def _no_space(err: BaseException, free: int, needed: int) -> bool:
    """Whether ``err`` means the disk is full: ENOSPC/EDQUOT in it or in what caused it, or a RuntimeError from a
    writer that reports no errno (torch.save's zip writer says "file write failed") while less than ``needed``
    bytes were free."""
    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, OSError) and chain.errno in NO_SPACE:
            return True
        chain = chain.__cause__ or chain.__context__
    return isinstance(err, RuntimeError) and free < needed


@contextlib.contextmanager
def out_of_space(what: str, path: str | os.PathLike, *, cleanup: str | os.PathLike | None = None,
                 checkpoints: str | os.PathLike | None = None,
                 last: Callable[[], Path | None] | None = None) -> Iterator[None]:
    """Around a checkpoint or export write: on any error remove the partial ``cleanup`` folder/file, and turn a
    full disk into :class:`DiskFullError` with :func:`disk_full_message`. The intact checkpoint is the newest
    complete one in ``checkpoints`` (or what ``last()`` returns, for other layouts); needed = its size, or what had
    been written if larger."""
    try:
        yield
    except BaseException as err:
        if isinstance(err, DiskFullError) or not isinstance(err, (OSError, RuntimeError)):
            _remove(cleanup)
            raise
        written = folder_bytes(cleanup) if cleanup is not None else 0
        free = shutil.disk_usage(_existing(Path(path))).free
        _remove(cleanup)
        intact = last() if last is not None else latest_checkpoint(checkpoints) if checkpoints is not None else None
        needed = max(written, folder_bytes(intact) if intact is not None else 0)
        if not _no_space(err, free, needed):
            raise
        code = err.errno if isinstance(err, OSError) and err.errno in NO_SPACE else errno.ENOSPC
        raise DiskFullError(code, disk_full_message(what, path, needed=needed, last=intact),
                            getattr(err, "filename", None)) from err


def _remove(path: str | os.PathLike | None) -> None:
    """Delete a partial file or folder, if any."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path) if Path(path).is_dir() else Path(path).unlink()


def ensure_writable(folder: str | os.PathLike, what: str = "the workspace") -> Path:
    """Create ``folder`` and write, fsync and delete a probe file in it; a read-only or forbidden folder raises
    :class:`NotWritableError` naming the folder and the fix, before any training time is spent."""
    folder = Path(folder)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as err:
        if err.errno not in READ_ONLY + NO_SPACE:
            raise
        reason = os.strerror(err.errno)
        raise NotWritableError(
            err.errno, f"{what} {folder} cannot be written ({reason}); nothing was trained. Fix: point the workspace "
            f"at a writable folder (--workspace DIR or TTS_WORKSPACE=DIR; on Kaggle /kaggle/working, never "
            f"/kaggle/input) or free space, then rerun the same command") from err
    return folder


def swap_in(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Replace the folder ``final`` by the complete folder ``tmp`` so that, killed at any moment, ``final`` is either
    the old complete folder, the new one, or absent (never half deleted): the old one is first renamed aside to a
    hidden name, then ``tmp`` is renamed into place, then the old one is deleted."""
    tmp, final = Path(tmp), Path(final)
    aside = final.with_name(f".{final.name}.old")
    shutil.rmtree(aside, ignore_errors=True)
    if final.exists():
        os.replace(final, aside)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    shutil.rmtree(aside, ignore_errors=True)
    return final
