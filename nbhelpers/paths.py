"""One workspace directory through which notebooks exchange artifacts, and discovery of earlier outputs
in the workspace or under Kaggle's read-only inputs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
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
