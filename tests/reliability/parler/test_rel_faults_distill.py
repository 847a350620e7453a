"""Stage 03 (distillation) under faults, through its real command line (tests/reliability/fault_driver.py injects
them from outside): SIGKILL inside a checkpoint write and inside the student export, a full disk inside a
checkpoint write and inside the student export, a read-only workspace. Each rerun ends bit-exactly where an
uninterrupted run ends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.records import read_records

DRIVER = PROJECT_ROOT / "tests" / "reliability" / "fault_driver.py"
ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
       "TTS_KAGGLE_INPUT": "/nonexistent/kaggle-input"}
SETTINGS = {"max_steps": 4, "eval_every": 2, "save_every": 2, "eval_sentences": '["ನಮಸ್ಕಾರ"]', "eval_frames": 12,
            "sample_max_seconds": 0.2, "sample_sentences": '["ನಮಸ್ಕಾರ"]', "int8": "false", "quality": "false"}
STAGE = "03_parler_distill"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """tests/parler's espeak dataset, one workspace (tiny teacher built once) and an uninterrupted reference run."""
    spec = importlib.util.spec_from_file_location("parler_fixtures", PROJECT_ROOT / "tests" / "parler" / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "parler"))  # its `parler_settings` import
    try:
        spec.loader.exec_module(fixtures)
    finally:
        sys.path.remove(str(PROJECT_ROOT / "tests" / "parler"))
    root = tmp_path_factory.mktemp("rel_distill")
    data = fixtures.make_dataset(root / "kn")
    ws = root / "ws"
    ref = distill(ws, data, "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return ws, data


def distill(ws: Path, data: Path, run: str, fault: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m nbhelpers.distill run` (tiny teacher) for ``run``, through the fault driver when ``fault`` is given."""
    args = ["run", "--profile", "smoke", "--teacher", "tiny", "--workspace", str(ws), "--dataset", str(data),
            f"--set=run={run}", *[f"--set={k}={v}" for k, v in SETTINGS.items()]]
    cmd = [sys.executable, str(DRIVER), *fault, "nbhelpers.distill"] if fault else [sys.executable, "-m", "nbhelpers.distill"]
    return subprocess.run(cmd + args, env=ENV, capture_output=True, text=True, timeout=600)


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def assert_matches_reference(ws: Path, run: str) -> None:
    student, ref = ws / "distill" / run / "student", ws / "distill" / "ref" / "student"
    assert files(student) == files(ref)
    a, b = load_file(str(student / "model.safetensors")), load_file(str(ref / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads((ws / "distill" / r / "history.json").read_text()) for r in (run, "ref")]
    assert [h["loss"] for h in history[0]] == [h["loss"] for h in history[1]]
    assert [r for r in read_records(Workspace(ws), STAGE) if r["status"] != "started"][-1]["status"] == "done"


def error_line(stderr: str) -> str:
    """The one explanation the command printed (no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_kill_inside_checkpoint_write_and_inside_student_export_then_rerun_is_exact(setup):
    ws, data = setup
    run, ckpts = "killed", ws / "distill" / "killed" / "checkpoints"
    out = distill(ws, data, run, ["--at", "io:open", "--match", r"\.tmp-step-000000004-\d+/COMPLETE\.json$",
                                  "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    assert [p.name for p in ckpts.glob("step-*")] == ["step-000000002"]
    assert not (ws / "distill" / run / "student").exists()
    out = distill(ws, data, run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_matches_reference(ws, run)
    assert not list(ckpts.glob(".tmp-*"))

    # a rerun re-exports the student; killed once the old student folder is being removed (3 files deleted)
    out = distill(ws, data, run, ["--arm", r"shutil:rmtree:/killed/(\.student\.old|student)$", "--at", "os:unlink",
                                  "--nth", "3", "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    student = ws / "distill" / run / "student"
    assert not student.exists() or files(student) == files(ws / "distill" / "ref" / "student")  # never half deleted
    out = distill(ws, data, run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_matches_reference(ws, run)


def test_disk_full_inside_a_checkpoint_and_inside_the_student_export(setup):
    ws, data = setup
    run, ckpts = "full", ws / "distill" / "full" / "checkpoints"
    out = distill(ws, data, run, ["--at", "torch:save", "--match", r"\.tmp-step-000000004", "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: Disk full while writing checkpoint step-000000004 to {ckpts}: about "), message
    assert "The last complete checkpoint, step-000000002 " in message and "MB needed" in message
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000000002"]
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"

    # rerun with space for the checkpoint, but the disk fills again while the student is exported
    out = distill(ws, data, run, ["--at", "io:open", "--match", r"/student\.tmp/student_report\.json$",
                                  "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith("ERROR: Disk full while writing the student export to "), message
    assert "The last complete checkpoint, step-000000004 " in message and "rerun the same command" in message
    assert not (ws / "distill" / run / "student.tmp").exists() and not (ws / "distill" / run / "student").exists()
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
    out = distill(ws, data, run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_matches_reference(ws, run)


def test_read_only_workspace_is_refused_before_training(setup, tmp_path):
    _, data = setup
    ro = tmp_path / "ro_ws"
    ro.mkdir()
    # EROFS injected on every write under the workspace (test_rel_faults_parler mounts a real read-only one)
    out = distill(ro, data, "ro", ["--at", "io:open", "--match", "^" + str(ro), "--fault", "erofs"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: the workspace {ro} cannot be written (Read-only file system)"), message
    assert not any(ro.iterdir())
