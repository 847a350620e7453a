"""Publish a folder of files into a Hugging Face hub cache exactly as ``huggingface_hub`` lays out a download, so
that the real client code (``from_pretrained("<repo id>")``, ``snapshot_download``, faster-whisper's model
download) finds it with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` pointing at the cache.

The layout is huggingface_hub's own (its helpers build the names):

    <cache>/models--<org>--<name>/blobs/<etag>                 file contents, named like the hub's etag
    <cache>/models--<org>--<name>/snapshots/<commit>/<file>    relative symlinks to the blobs
    <cache>/models--<org>--<name>/refs/main                    the commit the ``main`` branch points at

The etag of a file stored with Git LFS on the hub is its sha256, of any other file its git blob sha1; which files
are LFS follows the hub's default ``.gitattributes`` (weights, SentencePiece models, archives). The commit id is a
sha1 over the published (name, etag) pairs, so the same files give the same commit and a rebuild is a no-op.

Shared by the stand-in builders of both stacks (stdlib + huggingface_hub only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from huggingface_hub.file_download import _cache_commit_hash_for_specific_revision, _create_symlink, repo_folder_name
from huggingface_hub.utils.sha import git_hash

# suffixes the hub's default .gitattributes stores with Git LFS (the ones a model repo uses)
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".pt", ".pth", ".ckpt", ".onnx", ".msgpack", ".h5", ".npy",
                ".npz", ".pkl", ".pickle", ".tar", ".gz", ".zip", ".tflite", ".ot", ".joblib", ".wasm")
STAMP_DIR = ".built"


def etag(path: Path) -> str:
    """The etag the hub serves for this file: sha256 for LFS files, the git blob sha1 otherwise."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest() if Path(path).name.endswith(LFS_SUFFIXES) else git_hash(data)


def repo_dir(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    return Path(cache) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)


def snapshot(cache: Path, repo_id: str, revision: str = "main", repo_type: str = "model") -> Path | None:
    """The snapshot folder ``revision`` points at, or None when the repo is not (completely) cached."""
    storage = repo_dir(cache, repo_id, repo_type)
    ref = storage / "refs" / revision
    if not ref.is_file():
        return None
    folder = storage / "snapshots" / ref.read_text().strip()
    return folder if folder.is_dir() else None


def publish(cache: Path, repo_id: str, files: dict[str, Path], repo_type: str = "model",
            commit: str | None = None) -> str:
    """Put ``files`` (name in the repo -> local file) into the cache as the ``main`` revision of ``repo_id``;
    returns the commit id. Without ``commit`` the id is derived from the files and a repo cached at another commit
    is replaced (stand-ins only); with ``commit`` (a revision the client pins, e.g. in pocket-tts' configs) the
    files are added to that snapshot and other snapshots are kept."""
    entries = sorted((name, etag(path)) for name, path in files.items())
    storage = repo_dir(cache, repo_id, repo_type)
    if commit is None:
        commit = hashlib.sha1(json.dumps([repo_id, entries]).encode()).hexdigest()
        current = snapshot(cache, repo_id, repo_type=repo_type)
        if current is not None and current.name == commit and all((current / n).is_file() for n, _ in entries):
            return commit
        if storage.exists():
            shutil.rmtree(storage)
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    folder = storage / "snapshots" / commit
    for name, tag in entries:
        blob = storage / "blobs" / tag
        if not blob.exists():
            tmp = blob.with_name(f"{tag}.incomplete")  # huggingface_hub's own name for a partial download
            shutil.copyfile(files[name], tmp)
            os.replace(tmp, blob)
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        _create_symlink(str(blob), str(target), new_blob=False)
    _cache_commit_hash_for_specific_revision(str(storage), "main", commit)  # last: the repo is complete
    return commit


def publish_folder(cache: Path, repo_id: str, folder: Path, names: list[str] | tuple[str, ...],
                   repo_type: str = "model") -> str:
    """:func:`publish` the files ``names`` of ``folder``, refusing to publish a name the builder did not write."""
    missing = [n for n in names if not (Path(folder) / n).is_file()]
    if missing:
        raise FileNotFoundError(f"stand-in for {repo_id}: the build did not write {missing} in {folder}")
    return publish(cache, repo_id, {n: Path(folder) / n for n in names}, repo_type)


def stamp_path(root: Path, builder: str) -> Path:
    return Path(root) / STAMP_DIR / f"{builder}.json"


def is_built(root: Path, builder: str, version: str, cache: Path) -> bool:
    """Whether ``builder`` at ``version`` already published every repo it stamped and they are still cached."""
    path = stamp_path(root, builder)
    if not path.is_file():
        return False
    stamp = json.loads(path.read_text())
    if stamp.get("version") != version:
        return False
    for repo_id, commit in stamp.get("repos", {}).items():
        folder = snapshot(cache, repo_id)
        if folder is None or folder.name != commit:
            return False
    return True


def write_stamp(root: Path, builder: str, version: str, repos: dict[str, str]) -> None:
    path = stamp_path(root, builder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version, "repos": repos}, indent=1))
    os.replace(tmp, path)


def hub_env(root: Path) -> dict[str, str]:
    """The environment that points huggingface_hub (and transformers, faster-whisper through it) at the stand-in
    cache under ``root`` and forbids any network call."""
    return {"HF_HUB_CACHE": str(Path(root).resolve() / "hub"), "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1"}
