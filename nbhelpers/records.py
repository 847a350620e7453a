"""Machine-readable stage records: each stage appends one JSON line to the workspace's run log saying what
it read, what it wrote, what it measured and whether it finished or needs resuming. A stage's command runs inside
:func:`stage_run`, which writes ``started`` when it begins and exactly one of done / resume_needed / failed when it
ends, whatever happens."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .env import environment_report
from .paths import Workspace

STATUSES = ("started", "done", "resume_needed", "failed")
FINAL = ("done", "resume_needed", "failed")  # a run ends with exactly one of these
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


def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write itself: a mapping (a stage's Settings) as an object, else its text."""
    return dict(value) if isinstance(value, Mapping) else str(value)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented UTF-8 JSON, written to a temporary name (per process) and renamed: a reader never sees
    half a file and a kill leaves the previous version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=_plain), encoding="utf-8")
    os.replace(tmp, path)
    return path


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
    active = _ACTIVE.get(stage)
    if active is not None and status in FINAL:
        active.claim(status)
        if active.extra_metrics is not None:  # e.g. GPU utilisation sampled around the whole run
            record["metrics"] = {**_jsonable(active.extra_metrics()), **record["metrics"]}
    append_jsonl(ws.run_log, _relative(record, str(ws.root)))
    return record


class RecordedTwiceError(RuntimeError):
    """A stage run tried to write a second final record: a run ends exactly once."""


class ActiveRun:
    """One run of a stage inside :func:`stage_run`: the final record it wrote (``status``), if any, and
    ``extra_metrics``, a callable whose figures join that record's metrics (the stage's own figures win)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.status: str | None = None
        self.extra_metrics: Callable[[], dict[str, Any]] | None = None

    def claim(self, status: str) -> None:
        """Note the run's final status; a second one is a bug in the stage and raises."""
        if self.status is not None:
            raise RecordedTwiceError(f"{self.stage} already recorded {self.status!r} for this run "
                                     f"(run_id {run_id()}); a run writes one final record")
        self.status = status


_ACTIVE: dict[str, ActiveRun] = {}


@contextlib.contextmanager
def stage_run(stage: str, *, profile: str, workspace: Workspace | None = None, inputs: dict | None = None,
              main: bool = True) -> Iterator[ActiveRun]:
    """Run a stage's command: append ``started``, then let the stage append its own final record (done /
    resume_needed / failed) through :func:`append_stage_record`; if it raises, or returns without one, append
    ``failed`` with the error and the log's path ($TTS_STAGE_LOG, set by ``nb.run``). Only the ``main`` process
    (rank 0) writes. The final record is written exactly once: a second raises :class:`RecordedTwiceError`."""
    if not main:
        yield ActiveRun(stage)
        return
    if stage in _ACTIVE:
        raise RuntimeError(f"{stage} is already running in this process")
    ws = workspace or Workspace()
    log = os.environ.get("TTS_STAGE_LOG") or None
    append_stage_record(stage, profile=profile, status="started", workspace=ws, inputs=inputs, log=log)
    run = _ACTIVE[stage] = ActiveRun(stage)
    try:
        yield run
    except BaseException as err:
        if run.status is None:
            with contextlib.suppress(OSError):  # best effort: the disk may be the reason it failed
                append_stage_record(stage, profile=profile, status="failed", workspace=ws, inputs=inputs, log=log,
                                    error=f"{type(err).__name__}: {str(err)[:2000]}")
        raise
    else:
        if run.status is None:
            append_stage_record(stage, profile=profile, status="failed", workspace=ws, inputs=inputs, log=log,
                                error="the stage's command returned without recording a result")
    finally:
        _ACTIVE.pop(stage, None)


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
