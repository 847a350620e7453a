"""One workspace directory through which notebooks exchange artifacts, and discovery of earlier outputs
in the workspace or under Kaggle's read-only inputs."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .env import COLAB_DRIVE, KAGGLE_WORKING, detect_platform

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KAGGLE_INPUT = Path("/kaggle/input")


def workspace_root(explicit: str | os.PathLike | None = None) -> Path:
    """The workspace directory, created if needed.

    Order: an explicit path; $TTS_WORKSPACE; /kaggle/working on Kaggle; a folder on the mounted Drive on
    Colab (so checkpoints survive a runtime reset); otherwise ./workspace at the project root.
    """
    if explicit:
        root = Path(explicit)
    elif os.environ.get("TTS_WORKSPACE"):
        root = Path(os.environ["TTS_WORKSPACE"])
    else:
        where = detect_platform()
        if where.startswith("kaggle"):
            root = KAGGLE_WORKING
        elif where == "colab" and COLAB_DRIVE.is_dir():
            root = COLAB_DRIVE / "tts-suite"
        else:
            root = PROJECT_ROOT / "workspace"
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


class Workspace:
    """Named locations inside the workspace: one folder per stage, and the shared run log."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = workspace_root(root)

    def stage_dir(self, stage: str, *parts: str, create: bool = True) -> Path:
        path = self.root.joinpath(stage, *parts)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def run_log(self) -> Path:
        return self.root / "run_log.jsonl"

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


def kaggle_input_root() -> Path:
    """Kaggle's input mount; $TTS_KAGGLE_INPUT overrides it (tests use a fake tree)."""
    return Path(os.environ.get("TTS_KAGGLE_INPUT", KAGGLE_INPUT))


def input_roots() -> list[Path]:
    """Every folder under Kaggle's input mount that can hold an attached output, in both mount layouts:
    ``/kaggle/input/<slug>`` (before 2026) and ``/kaggle/input/{notebooks,datasets,models}/<owner>/<slug>``."""
    base = kaggle_input_root()
    if not base.is_dir():
        return []
    roots = []
    for child in sorted(base.iterdir()):
        if not child.is_dir():
            continue
        if child.name in ("notebooks", "datasets", "models", "competitions"):
            roots += [slug for owner in sorted(child.iterdir()) if owner.is_dir()
                      for slug in sorted(owner.iterdir()) if slug.is_dir()]
        else:
            roots.append(child)
    return roots


def _walk(root: Path, relative: str, max_depth: int) -> Iterator[Path]:
    """Yield root/relative, and <any sub-folder up to max_depth>/relative (also globs)."""
    for depth in range(max_depth + 1):
        pattern = "/".join(["*"] * depth + [relative]) if depth else relative
        yield from sorted(root.glob(pattern))


def find_artifacts(relative: str, workspace: Workspace | None = None, *, max_depth: int = 3) -> list[Path]:
    """All places a previous stage's artifact (a path relative to a workspace, globs allowed, e.g.
    ``data/kn_smoke/manifest.jsonl``) exists: the workspace first, then every Kaggle input, searching a few
    folder levels down because an attached output may be nested."""
    ws = workspace or Workspace()
    found = list(_walk(ws.root, relative, 0))
    for root in input_roots():
        found += [p for p in _walk(root, relative, max_depth) if p not in found]
    return found


def find_artifact(relative: str, workspace: Workspace | None = None, *, required: bool = False,
                  hint: str = "") -> Path | None:
    """The first match of :func:`find_artifacts`; with ``required`` a readable error when there is none."""
    found = find_artifacts(relative, workspace)
    if found:
        return found[0]
    if required:
        ws = workspace or Workspace()
        raise FileNotFoundError(
            f"{relative!r} was not found in the workspace {ws.root} nor under {kaggle_input_root()}. "
            + (hint or "Run the stage that produces it first, or attach its output as a Kaggle input."))
    return None


def in_reach(path: str | os.PathLike, workspace: Workspace) -> bool:
    """Whether a path a record names lies in this workspace or under the attached inputs: a record copied from
    another workspace (an absolute path elsewhere) must not lead a stage to that workspace's files."""
    target = Path(path).resolve()
    return any(target == root or root in target.parents for root in [workspace.root, *input_roots()])


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks (checkpoint integrity, pinned model files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class StageBusyError(RuntimeError):
    """Another run of the same stage holds the workspace's stage lock."""


_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    """In a forked child (a worker process), drop the copies of the parent's lock descriptors, so a lock is
    released when its holder dies even while a worker it forked lingers."""
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _describe_holder(fd: int) -> tuple[str, int | None]:
    """'pid N on host H, since T' from a lock file's contents (and the pid), or a plain 'unknown holder'."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']}, since {info['since']}", int(info["pid"])
    except (ValueError, KeyError, TypeError, OSError):
        return "unknown holder", None


@contextmanager
def stage_lock(workspace: Workspace | str | os.PathLike | None, stage: str) -> Iterator[Path]:
    """Hold ``<workspace>/.locks/<stage>.lock`` while a stage writes, so a second run of that stage on the same
    workspace fails at once with :class:`StageBusyError` instead of racing the first.

    The lock is an flock on the file (released by the kernel when its holder dies, so no stale lock can block);
    the file records pid, host and start time for the message. A file left by a run that died is taken over,
    and said so on stderr."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    path = ws.root / ".locks" / f"{stage}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder, _ = _describe_holder(fd)
            os.close(fd)
            raise StageBusyError(
                f"stage {stage} is already running in {ws.root} ({holder}); wait for it to finish or stop it; "
                f"if that run is gone (e.g. it ran on another machine sharing this folder), delete {path} and "
                f"start again.") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder released and removed the file between our open and flock: lock the new one
    previous, pid = _describe_holder(fd)
    if pid is not None:
        print(f"stage {stage}: took over a stale lock {path} ({previous}): that run is no longer running",
              file=sys.stderr, flush=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join(sys.argv[:4])}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    _HELD_LOCKS.add(fd)
    try:
        yield path
    finally:
        _HELD_LOCKS.discard(fd)
        path.unlink(missing_ok=True)
        os.close(fd)
