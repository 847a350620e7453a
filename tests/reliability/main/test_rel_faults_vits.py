"""Stage 04 (coqui VITS) under faults, through its real command line (tests/reliability/fault_driver.py injects
them from outside): SIGKILL inside a coqui checkpoint write and inside the bundle export, a full disk inside a
checkpoint write, a read-only workspace, and a previous session's run attached as a read-only input.

coqui's Trainer neither saves the data order nor the RNG state, so a VITS resume continues from the last complete
checkpoint (weights, optimiser, scheduler, step counter) but is not bit-exact; these tests check that much."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.records import read_records

DRIVER = PROJECT_ROOT / "tests" / "reliability" / "fault_driver.py"
STAGE = "04_vits_bangla_finetune"


def _corpus_builder():
    spec = importlib.util.spec_from_file_location("vits_fixtures", PROJECT_ROOT / "tests" / "vits" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_corpus


def vits(env: dict, ws: Path, command: str, *extra: str, fault: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m nbhelpers.vits <command>` (smoke, no time budget), through the fault driver when ``fault`` is given."""
    args = [command, "--profile", "smoke", "--workspace", str(ws), "--set=budget_seconds=0", "--set=save_step=1",
            "--set=export_onnx=false", *extra]
    cmd = [sys.executable, str(DRIVER), *fault, "nbhelpers.vits"] if fault else [sys.executable, "-m", "nbhelpers.vits"]
    return subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=600)


def error_line(stderr: str) -> str:
    """The one explanation the command printed (no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def env_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_vits")
    ws = root / "ws"
    _corpus_builder()(ws / "data" / "bn_smoke")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
           "TTS_KAGGLE_INPUT": str(root / "no-kaggle-input")}
    return env, ws


def only_run(ws: Path) -> Path:
    runs = [p for p in (ws / "vits" / "runs").iterdir() if (p / "config.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_kill_and_disk_full_inside_checkpoint_writes_and_kill_inside_export(env_ws):
    from nbhelpers.vits.export import latest_bundle

    env, ws = env_ws
    # killed inside the write of checkpoint_2.pth (the file is created, its data not written)
    out = vits(env, ws, "train", "--max-steps", "2", "--no-finish",
               fault=["--arm", r"trainer.io:save_fsspec:checkpoint_2\.pth$", "--at", "torch:save", "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    run = only_run(ws)
    assert (run / "checkpoint_2.pth").stat().st_size == 0 and (run / "checkpoint_1.pth").is_file()

    # the rerun sets the partial file aside and continues from checkpoint_1 (step counter and optimiser; coqui
    # counts the resumed session from the saved step + 1)
    out = vits(env, ws, "train", "--max-steps", "3", "--no-finish")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "continuing" in out.stdout and "checkpoint_1.pth" in out.stdout
    assert (run / "incomplete" / "checkpoint_2.pth").is_file()
    rec = read_records(Workspace(ws), STAGE)[-1]
    assert rec["status"] == "done" and (rec["metrics"]["start_step"], rec["metrics"]["end_step"]) == (2, 3)
    assert torch.load(run / "checkpoint_3.pth", weights_only=False)["step"] == 3

    # the disk fills while checkpoint_5.pth is written: one clear message, the partial file removed, run failed
    out = vits(env, ws, "train", "--max-steps", "5", "--no-finish",
               fault=["--arm", r"trainer.io:save_fsspec:checkpoint_5\.pth$", "--at", "torch:save", "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: Disk full while writing checkpoint checkpoint_5.pth to {run}: about "), message
    assert f"The last complete checkpoint, checkpoint_4.pth in {run}, is intact" in message
    assert "MB needed" in message and "MB free" in message and "rerun the same command" in message
    assert not (run / "checkpoint_5.pth").exists()
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
    out = vits(env, ws, "train", "--max-steps", "5", "--no-finish")
    assert out.returncode == 0, out.stderr[-3000:]
    rec = read_records(Workspace(ws), STAGE)[-1]
    assert rec["status"] == "done" and rec["metrics"]["start_step"] == 5 and rec["metrics"]["end_step"] >= 5
    end = rec["metrics"]["end_step"]

    # killed inside the bundle export: no half bundle is ever the newest complete one; `finish` redoes it
    out = vits(env, ws, "finish", fault=["--at", "torch:save", "--match", r"/vits/model/\.tmp-step-.*/model\.pth$",
                                         "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    assert latest_bundle(Workspace(ws)) is None
    out = vits(env, ws, "finish")
    assert out.returncode == 0, out.stderr[-3000:]
    bundle = latest_bundle(Workspace(ws))
    assert bundle.name == f"step-{end:09d}" and (bundle / "model.pth").is_file()
    assert not list(bundle.parent.glob(".tmp-*"))  # the killed export's folder was cleaned up
    assert read_records(Workspace(ws), STAGE)[-1]["outputs"]["bundle"] == str(bundle)


def test_read_only_workspace_is_refused_before_training(env_ws, tmp_path):
    env, ws = env_ws
    ro = tmp_path / "ro_ws"
    ro.mkdir()
    out = vits(env, ro, "train", "--no-finish", fault=["--at", "io:open", "--match", "^" + str(ro), "--fault", "erofs"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: the workspace {ro} cannot be written (Read-only file system)"), message
    assert "/kaggle/input" in message and "--workspace DIR" in message
    assert not any(ro.iterdir())


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_a_run_attached_as_a_read_only_input_is_copied_never_modified(tmp_path, monkeypatch):
    """A previous session's run under /kaggle/input, its newest checkpoint cut short: the resumable run is a
    writable copy in the workspace (partial checkpoint set aside there); the input's names and bytes are unchanged."""
    from nbhelpers.vits.train import find_resumable_run, resumable_checkpoint

    inputs = tmp_path / "input"
    old = inputs / "previous-session" / "vits" / "runs" / "vits_bn-1"
    old.mkdir(parents=True)
    (old / "config.json").write_text("{}")
    torch.save({"model": {"w": torch.ones(3)}, "step": 5}, old / "checkpoint_5.pth")
    (old / "checkpoint_9.pth").write_bytes((old / "checkpoint_5.pth").read_bytes()[:100])  # killed mid-write
    before = _tree(inputs)
    for path in [inputs, *inputs.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setenv("TTS_KAGGLE_INPUT", str(inputs))
    ws = Workspace(tmp_path / "ws")
    try:
        run = find_resumable_run(ws)
        assert run == ws.root / "vits" / "runs" / "vits_bn-1"
        assert resumable_checkpoint(run) == run / "checkpoint_5.pth"
        assert (run / "incomplete" / "checkpoint_9.pth").is_file() and not (run / "checkpoint_9.pth").exists()
        assert os.access(run, os.W_OK) and os.stat(run / "checkpoint_5.pth").st_mode & 0o200
        assert find_resumable_run(ws) == run  # a second session reuses the copy
    finally:
        for path in [inputs, *inputs.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert _tree(inputs) == before
