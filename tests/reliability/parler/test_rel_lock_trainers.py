"""A second training run of a stage on the same workspace is refused at once while the first holds the stage lock,
and leaves no record behind; the lock is the data stage's (paths.stage_lock), taken by every trainer's command line."""

import os
import subprocess
import sys

from nbhelpers.paths import PROJECT_ROOT, Workspace, stage_lock
from nbhelpers.records import read_records

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def test_a_second_parler_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    ws = Workspace(tmp_path / "ws")
    cmd = [sys.executable, "-m", "nbhelpers.parler", "train", "--profile", "smoke", "--workspace", str(ws.root),
           "--dataset", str(tmp_path / "no-such-dataset")]
    with stage_lock(ws, "02_parler_finetune"):
        busy = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert busy.returncode == 1 and "stage 02_parler_finetune is already running in" in busy.stderr
    assert f"pid {os.getpid()}" in busy.stderr and "Traceback" not in busy.stderr
    assert read_records(ws) == []  # the running one will write its own record
    free = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert "already running" not in free.stderr  # lock released: this run gets as far as the missing dataset
    assert [r["status"] for r in read_records(ws)] == ["started", "failed"]
