"""Stage 02 under faults, through its real command line (tests/reliability/fault_driver.py injects them from
outside): SIGKILL inside a checkpoint write and inside the export, a full disk (injected ENOSPC and a real
size-limited tmpfs), a read-only workspace. Each rerun ends bit-exactly where an uninterrupted run ends."""

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
SETTINGS = {"max_steps": 6, "save_every": 2, "eval_every": 0, "freeze_text_encoder": "false",
            "sample_max_seconds": 0.2, "warmup_steps": 2}
STAGE = "02_parler_finetune"
pytestmark = pytest.mark.slow


def _driver():
    spec = importlib.util.spec_from_file_location("fault_driver", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mounted = _driver().mounted


def _fixtures():
    """tests/parler/conftest.py's dataset builder (conftest modules cannot be imported by name across folders)."""
    spec = importlib.util.spec_from_file_location("parler_fixtures", PROJECT_ROOT / "tests" / "parler" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "parler"))  # its `parler_settings` import
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PROJECT_ROOT / "tests" / "parler"))
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A dataset, one workspace (tiny base and code cache built once) and an uninterrupted reference run."""
    root = tmp_path_factory.mktemp("rel_parler")
    data = _fixtures().make_dataset(root / "kn")
    ws = root / "ws"
    ref = train(ws, data, "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return ws, data


def train(ws: Path, data: Path, run: str, fault: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m nbhelpers.parler train` for ``run``, through the fault driver when ``fault`` is given."""
    args = ["train", "--profile", "smoke", "--workspace", str(ws), "--dataset", str(data), "--run", run]
    args += [f"--set={k}={v}" for k, v in SETTINGS.items()]
    cmd = [sys.executable, str(DRIVER), *fault, "nbhelpers.parler"] if fault else [sys.executable, "-m", "nbhelpers.parler"]
    return subprocess.run(cmd + args, env=ENV, capture_output=True, text=True, timeout=600)


def assert_matches_reference(ws: Path, run: str) -> None:
    export = ws / "parler" / run / "export"
    a, b = load_file(str(export / "model.safetensors")), load_file(str(ws / "parler" / "ref" / "export" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((export / "history.json").read_text())
    assert history == json.loads((ws / "parler" / "ref" / "export" / "history.json").read_text())
    assert [r for r in read_records(Workspace(ws), STAGE) if r["status"] != "started"][-1]["status"] == "done"


def assert_disk_full_message(stderr: str, ws: Path, run: str, intact: str) -> None:
    message = error_line(stderr)
    assert message.startswith("ERROR: Disk full while writing checkpoint step-000000006 to "), message
    assert str(ws / "parler" / run / "checkpoints") in message
    assert f"The last complete checkpoint, {intact} " in message and "is intact" in message
    assert "MB needed" in message and "MB free" in message and "rerun the same command" in message


def error_line(stderr: str) -> str:
    """The one explanation the command printed (no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_kill_inside_checkpoint_write_and_inside_export_then_rerun_is_exact(setup):
    from nbhelpers.distill.train import find_teacher
    from nbhelpers.parler.model import SOURCE_FILE

    ws, data = setup
    run, ckpts = "killed", ws / "parler" / "killed" / "checkpoints"
    # killed while writing step 4: its training_state.pt is on disk, its COMPLETE.json marker is not
    out = train(ws, data, run, ["--at", "io:open", "--match", r"\.tmp-step-000000004-\d+/COMPLETE\.json$",
                                "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    tmp = list(ckpts.glob(".tmp-step-000000004-*"))
    assert len(tmp) == 1 and (tmp[0] / "training_state.pt").is_file() and not (tmp[0] / "COMPLETE.json").exists()
    assert [p.name for p in ckpts.glob("step-*")] == ["step-000000002"]
    results = [r for r in read_records(Workspace(ws), STAGE) if r["status"] != "started"]
    assert results[-1]["outputs"]["run_dir"].endswith("/ref")  # nothing recorded as done

    # the rerun resumes from step 2; killed again once the export folder is being replaced (3 files deleted)
    reference_export = sorted(p.relative_to(ws / "parler" / "ref" / "export").as_posix()
                              for p in (ws / "parler" / "ref" / "export").rglob("*"))
    first = train(ws, data, run)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not list(ckpts.glob(".tmp-*"))  # the dead save's folder was cleaned up
    out = train(ws, data, run, ["--arm", r"shutil:rmtree:/killed/(\.export\.old|export)$", "--at", "os:unlink",
                                "--nth", "3", "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    # stage 03 takes the newest stage-02 export: this run's export is complete (or absent), never half deleted
    export = ws / "parler" / run / "export"
    if export.exists():
        assert sorted(p.relative_to(export).as_posix() for p in export.rglob("*")) == reference_export
    found = Path(find_teacher("auto", Workspace(ws)))
    assert (found / SOURCE_FILE).is_file()
    assert sorted(p.relative_to(found).as_posix() for p in found.rglob("*")) == reference_export

    again = train(ws, data, run)  # the export is redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert_matches_reference(ws, run)
    assert not [p for p in (ws / "parler" / run).iterdir() if p.name.startswith((".export", "export."))]


def test_disk_full_inside_a_checkpoint_write_stops_clearly_then_resumes_exactly(setup):
    ws, data = setup
    run, ckpts = "full", ws / "parler" / "full" / "checkpoints"
    # the third save (step 6) runs out of space halfway through its training_state.pt
    out = train(ws, data, run, ["--at", "torch:save", "--match", r"\.tmp-step-000000006", "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    assert_disk_full_message(out.stderr, ws, run, "step-000000004")
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000000002", "step-000000004"]  # partial one removed
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
    assert not (ws / "parler" / run / "export").exists()
    resumed = train(ws, data, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_matches_reference(ws, run)


def test_real_full_disk_on_a_small_tmpfs_then_resume_with_space(setup):
    """The checkpoints folder on a tmpfs that holds two checkpoints but not a third (two are kept): the save of
    step 6 really runs out of space. Where mounting is not permitted, the same fault is injected instead."""
    ws, data = setup
    run, ckpts = "tmpfs", ws / "parler" / "tmpfs" / "checkpoints"
    size = sum(f.stat().st_size for f in (ws / "parler" / "ref" / "checkpoints" / "step-000000006").rglob("*"))
    with mounted("tmpfs", ckpts, f"size={int(2.5 * size)}") as ok:
        fault = None if ok else ["--at", "torch:save", "--match", r"\.tmp-step-000000006", "--fault", "enospc"]
        out = train(ws, data, run, fault)
        assert out.returncode == 1, out.stderr[-3000:]
        assert_disk_full_message(out.stderr, ws, run, "step-000000004")
        assert sorted(p.name for p in ckpts.iterdir()) == ["step-000000002", "step-000000004"]
        assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
        if ok:  # space freed: the same disk made larger
            assert subprocess.run(["mount", "-o", f"remount,size={20 * size}", str(ckpts)]).returncode == 0
        resumed = train(ws, data, run)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_matches_reference(ws, run)


def test_read_only_workspace_is_refused_before_training(setup, tmp_path):
    ws, data = setup
    ro = tmp_path / "ro_ws"
    ro.mkdir()
    with mounted("bind", ro, "ro", source=str(ro)) as ok:
        fault = None if ok else ["--at", "io:open", "--match", "^" + str(ro), "--fault", "erofs"]
        out = train(ro, data, "ro", fault)
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: the workspace {ro} cannot be written (Read-only file system)"), message
    assert "--workspace DIR" in message and "rerun the same command" in message
    assert "parler train" not in out.stderr and "DAC codes" not in out.stderr  # no time spent on models or data
    assert not any(ro.iterdir())
