"""A prepare killed mid-clean (SIGKILL, SIGTERM, or Ctrl-C: SIGINT) leaves no worker processes behind, and the rerun reuses every
item that was finished before the kill; a torn last line of the item cache is tolerated."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rel_data_corpora import FAST, build_corpus

from nbhelpers.data.corpus import build_smoke_corpus
from nbhelpers.data.pipeline import prepare
from nbhelpers.paths import PROJECT_ROOT, Workspace

N = 44  # items in the corpus (all the embedded Kannada sentences): enough that the kill lands mid-clean


def _done_items(cache: os.PathLike) -> int:
    """Complete lines of the item cache (a torn last line does not count)."""
    if not os.path.exists(cache):
        return 0
    count = 0
    for line in open(cache, encoding="utf-8", errors="replace").read().split("\n"):
        try:
            json.loads(line)
            count += 1
        except ValueError:
            pass
    return count


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default, as in a terminal. A shell starts background jobs (CI
    runners, ``make test &``) with SIGINT ignored, a child inherits that, and Python then never turns Ctrl-C into
    KeyboardInterrupt, so the SIGINT case would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_signal(source, root, sig) -> tuple[Path, set[int], subprocess.Popen]:
    """Start `data prepare` with 2 workers, send ``sig`` once at least 4 items are cached; returns the item cache,
    the worker pids seen and the ended process."""
    ws = Workspace(root)
    cache = ws.root / "data" / ".k.partial" / ".items.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "nbhelpers.data", "prepare", "--profile", "smoke", "--workspace",
                             str(ws.root), "--source", str(source), "--name", "k", "--language", "kn", "--workers", "2",
                             "--set", "annotate=false", "--set", "vad=energy", "--set", "max_duration=8.0"],
                            cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_interruptible)
    parent = psutil.Process(proc.pid)
    workers: set[int] = set()
    deadline = time.monotonic() + 240
    while _done_items(cache) < 4:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        workers |= {c.pid for c in parent.children(recursive=True)}
        time.sleep(0.05)
    workers |= {c.pid for c in parent.children(recursive=True)}
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return cache, workers, proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_prepare_leaves_no_workers_and_rerun_reuses_finished_items(tmp_path, sig):
    source = build_smoke_corpus("kn", tmp_path / "src", n_sentences=N, damaged=False)
    ws = Workspace(tmp_path / "ws")
    cache, workers, proc = _start_and_signal(source, ws.root, sig)
    assert proc.returncode != 0, f"the run finished although {sig.name} was sent mid-clean"
    assert len(workers) >= 2
    gone_by = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < gone_by:
        alive = {p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.2)
    assert not alive, f"orphan worker processes after {sig.name}: {alive}"
    done = _done_items(cache)
    assert 4 <= done < N
    again = prepare(source, "k", "kn", workspace=ws, clean=FAST, workers=1, exports=())
    assert again.reused == done and again.processed == N - done
    assert again.stats["read"] == again.stats["kept"] + again.stats["rejected"] == N


def test_torn_last_cache_line_is_tolerated(tmp_path):
    source = build_corpus("openslr", tmp_path / "src", n=3)
    ws = Workspace(tmp_path / "ws")
    prepare(source, "t", "kn", workspace=ws, clean=FAST, workers=1, exports=())
    cache = ws.root / "data" / "t" / ".items.jsonl"
    lines = cache.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 3
    cache.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2], encoding="utf-8")  # a write cut short
    again = prepare(source, "t", "kn", workspace=ws, clean=FAST, workers=1, exports=())
    assert again.reused == 2 and again.processed == 1 and again.stats["kept"] == 3
