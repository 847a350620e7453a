"""Two runs of one stage on one workspace: the second fails at once and says who holds the stage; a lock left
by a run that died is taken over, with a notice."""

import os
import subprocess
import sys
import time

import pytest
from rel_data_corpora import build_corpus

from nbhelpers.paths import PROJECT_ROOT, StageBusyError, Workspace, stage_lock

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def _holder(ws: Workspace, stage: str) -> subprocess.Popen:
    """Another process holding ``stage``'s lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys\nfrom nbhelpers.paths import stage_lock\n"
                             f"with stage_lock({str(ws.root)!r}, {stage!r}):\n print('held', flush=True)\n"
                             " sys.stdin.read()"], cwd=PROJECT_ROOT, env=ENV, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_fails_at_once_naming_the_holder(tmp_path):
    ws = Workspace(tmp_path / "ws")
    holder = _holder(ws, "data")
    try:
        t0 = time.monotonic()
        with pytest.raises(StageBusyError) as info:
            with stage_lock(ws, "data"):
                pass
        assert time.monotonic() - t0 < 2
        message = str(info.value)
        assert f"stage data is already running in {ws.root} (pid {holder.pid}" in message
        assert "if that run is gone" in message
        with stage_lock(ws, "vits"):  # another stage is not blocked
            pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with stage_lock(ws, "data") as path:  # released with its holder
        assert str(os.getpid()) in path.read_text()
    assert not path.exists()


def test_lock_of_a_dead_run_is_broken_and_said_so(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    holder = _holder(ws, "data")
    holder.kill()  # SIGKILL: the lock file stays behind
    holder.wait(timeout=30)
    lock = ws.root / ".locks" / "data.lock"
    assert lock.is_file()
    with stage_lock(ws, "data"):
        pass
    err = capsys.readouterr().err
    assert "stale lock" in err and f"pid {holder.pid}" in err


def test_two_prepare_commands_on_one_workspace(tmp_path):
    source = build_corpus("json", tmp_path / "src")
    ws = Workspace(tmp_path / "ws")
    holder = _holder(ws, "data")
    try:
        done = subprocess.run([sys.executable, "-m", "nbhelpers.data", "prepare", "--profile", "smoke", "--workspace",
                               str(ws.root), "--source", str(source), "--name", "d", "--language", "kn"],
                              capture_output=True, text=True, cwd=PROJECT_ROOT, env=ENV, timeout=300)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "stage data is already running" in done.stderr
    assert not (ws.root / "data" / "d").exists() and not (ws.root / "data" / ".d.partial").exists()
