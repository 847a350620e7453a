"""Machine-readable stage records: each stage appends one JSON line to the workspace's run log saying what
it read, what it wrote, what it measured and whether it finished or needs resuming."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from .env import environment_report
from .paths import Workspace

STATUSES = ("done", "resume_needed", "failed")
IN_WORKSPACE = "./"  # a record's path inside its workspace is stored as "./<relative>", so a moved copy still works


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


def _map_strings(value: Any, fn: Any) -> Any:
    """``fn`` applied to every string inside nested dicts and lists (everything else unchanged)."""
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return fn(value) if isinstance(value, str) else value


def _relative(value: Any, root: str) -> Any:
    """Paths under ``root`` as ``./<relative>``, recursively."""
    return _map_strings(value, lambda s: IN_WORKSPACE + s[len(root) + 1:]
                        if s == root or s.startswith(root + "/") else s)


def _rebased(value: Any, root: Path) -> Any:
    """``./<relative>`` values as absolute paths under ``root``, the workspace the run log is read in."""
    return _map_strings(value, lambda s: str(root / s[len(IN_WORKSPACE):]) if s.startswith(IN_WORKSPACE) else s)


def append_jsonl(path: str | os.PathLike, obj: Any) -> Path:
    """Append ``obj`` as one JSON line, file-locked and fsynced, so concurrent writers never interleave and a
    kill leaves at most a torn last line (which readers skip). Creates the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(obj, ensure_ascii=False) + "\n"
    with path.open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
        fcntl.flock(f, fcntl.LOCK_UN)
    return path


_RUN_ID: str | None = None


def run_id() -> str:
    """One id per stage process (every record it writes carries it), so the chain report can say which run of an
    earlier stage produced an artefact; $TTS_RUN_ID overrides it."""
    global _RUN_ID
    if _RUN_ID is None:
        _RUN_ID = os.environ.get("TTS_RUN_ID") or f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return _RUN_ID


def append_stage_record(stage: str, *, profile: str, status: str = "done", inputs: dict | None = None,
                        outputs: dict | None = None, metrics: dict | None = None,
                        workspace: Workspace | None = None, **extra: Any) -> dict[str, Any]:
    """Append one record to ``<workspace>/run_log.jsonl`` (file-locked, one line) and return it. Paths inside the
    workspace are stored relative to it (``./...``) and read back under wherever the workspace is then."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    from .profiles import size_overrides

    ws = workspace or Workspace()
    env = environment_report()
    sized = size_overrides()
    if sized:  # a dress rehearsal: the real profile with sizes shrunk; every record says by how much
        extra.setdefault("size_overrides", {"file": os.environ["TTS_SIZE_OVERRIDES"], "values": sized})
    record = _jsonable({
        "stage": stage, "profile": profile, "status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_id": run_id(),
        "inputs": inputs or {}, "outputs": outputs or {}, "metrics": metrics or {},
        "environment": {"platform": env.platform, "stack": env.stack, "gpus": [g["name"] for g in env.gpus],
                        "dtype": env.dtype, "packages": {k: v for k, v in env.packages.items() if v != "-"}},
        **extra,
    })
    append_jsonl(ws.run_log, _relative(record, str(ws.root)))
    return record


def read_records(path: str | os.PathLike | Workspace | None = None, stage: str | None = None) -> list[dict]:
    """All records of a run log (a path, a Workspace, or the default workspace), optionally of one stage, with
    workspace paths under the log's folder. A torn last line (a process killed mid-write) is ignored."""
    if path is None or isinstance(path, Workspace):
        path = (path or Workspace()).run_log
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if stage is None or rec.get("stage") == stage:
            out.append(_rebased(rec, path.parent.resolve()))
    return out


def last_record(path: str | os.PathLike | Workspace | None = None, stage: str | None = None) -> dict | None:
    records = read_records(path, stage)
    return records[-1] if records else None
