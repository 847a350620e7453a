"""Stage 07 (Pocket TTS) under faults, through its real command line (tests/reliability/fault_driver.py injects
them from outside): SIGKILL inside a checkpoint write and inside the export, a full disk inside a checkpoint write
and inside the export, a read-only workspace. Each rerun ends bit-exactly where an uninterrupted run ends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.records import read_records
from nbhelpers.training import STATE_FILE

DRIVER = PROJECT_ROOT / "tests" / "reliability" / "fault_driver.py"
SETTINGS = {"batch_size": 4, "max_steps": 6, "save_every": 2, "warmup_steps": 2, "voice_prompt_frames": 12,
            "distill_share": 0.5}
STAGE = "07_pocket_tts_finetune"
pytestmark = pytest.mark.slow


def _load(name: str, path: Path):
    """A helper module by file path (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """tests/pocket's espeak corpus, one workspace, and an uninterrupted reference run."""
    fixtures = _load("pocket_fixtures", PROJECT_ROOT / "tests" / "pocket" / "conftest.py")
    root = tmp_path_factory.mktemp("rel_pocket")
    corpus = fixtures.make_pocket_corpus(root / "corpus")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
           "TTS_KAGGLE_INPUT": str(root / "no-kaggle-input")}
    ws = root / "ws"
    ref = train(env, ws, corpus, "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return env, ws, corpus


def train(env: dict, ws: Path, corpus: Path, run: str, fault: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m nbhelpers.pocket train` for ``run``, through the fault driver when ``fault`` is given."""
    args = ["train", "--profile", "smoke", "--workspace", str(ws), "--dataset", str(corpus), "--run", run]
    args += [f"--set={k}={json.dumps(v)}" for k, v in SETTINGS.items()]
    cmd = [sys.executable, str(DRIVER), *fault, "nbhelpers.pocket"] if fault else [sys.executable, "-m", "nbhelpers.pocket"]
    return subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=600)


def final_state(ws: Path, run: str) -> dict:
    return torch.load(ws / "pocket" / run / "checkpoints" / "step-000000006" / STATE_FILE, map_location="cpu",
                      weights_only=False)


def assert_matches_reference(ws: Path, run: str) -> None:
    a, b = final_state(ws, run), final_state(ws, "ref")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"]) and a["model"].keys() == b["model"].keys()
    ema_a, ema_b = a["extra"]["ema"]["shadow"], b["extra"]["ema"]["shadow"]
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_b)
    assert [h["loss"] for h in a["extra"]["history"]] == [h["loss"] for h in b["extra"]["history"]]
    export, ref_export = ws / "pocket" / run / "export", ws / "pocket" / "ref" / "export"
    assert sorted(p.name for p in export.iterdir()) == ["model.pt", "model.yaml", "tokenizer.model"]
    assert (export / "model.pt").read_bytes() == (ref_export / "model.pt").read_bytes()
    rec = [r for r in read_records(Workspace(ws), STAGE) if r["status"] != "started"][-1]  # a killed run: no result
    assert rec["status"] == "done" and rec["outputs"]["checkpoint"] == str(export / "model.pt")


def error_line(stderr: str) -> str:
    """The one explanation the command printed (no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_kill_inside_checkpoint_write_and_inside_export_then_rerun_is_exact(setup):
    env, ws, corpus = setup
    run, ckpts = "killed", ws / "pocket" / "killed" / "checkpoints"
    # killed while writing step 4: training_state.pt is written, pocket_model.pt and the marker are not
    out = train(env, ws, corpus, run, ["--at", "torch:save", "--match", r"\.tmp-step-000000004-\d+/pocket_model\.pt$",
                                       "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    tmp = list(ckpts.glob(".tmp-step-000000004-*"))
    assert len(tmp) == 1 and [p.name for p in tmp[0].iterdir()] == [STATE_FILE]
    assert [p.name for p in ckpts.glob("step-*")] == ["step-000000002"]
    assert not (ws / "pocket" / run / "export").exists()
    resumed = train(env, ws, corpus, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_matches_reference(ws, run)
    assert not list(ckpts.glob(".tmp-*"))

    # a rerun re-exports; killed while model.pt is being copied (its destination already opened and truncated)
    out = train(env, ws, corpus, run, ["--arm", r"shutil:copy2:model\.pt$", "--at", "os:sendfile", "--fault", "kill"])
    assert out.returncode == -9, out.stderr[-3000:]
    # the export the last done record names is still the complete one
    assert_matches_reference(ws, run)
    again = train(env, ws, corpus, run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_matches_reference(ws, run)


def test_disk_full_inside_a_checkpoint_and_inside_the_export(setup):
    env, ws, corpus = setup
    run, ckpts = "full", ws / "pocket" / "full" / "checkpoints"
    out = train(env, ws, corpus, run, ["--at", "torch:save", "--match", r"\.tmp-step-000000006-\d+/pocket_model",
                                       "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: Disk full while writing checkpoint step-000000006 to {ckpts}: about "), message
    assert "MB needed" in message and "MB free" in message
    assert "The last complete checkpoint, step-000000004 " in message and "rerun the same command" in message
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000000002", "step-000000004"]
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
    resumed = train(env, ws, corpus, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_matches_reference(ws, run)

    # the disk fills while a rerun re-exports: the complete export and the done record's files stay as they were
    out = train(env, ws, corpus, run, ["--at", "shutil:copy2", "--match", r"model\.pt$", "--fault", "enospc"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith("ERROR: Disk full while writing the export to "), message
    assert "The last complete checkpoint, step-000000006 " in message
    assert not (ws / "pocket" / run / "export.tmp").exists()
    assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
    done = [r for r in read_records(Workspace(ws), STAGE) if r["status"] == "done"][-1]
    assert Path(done["outputs"]["checkpoint"]).read_bytes() == (ws / "pocket" / "ref" / "export" / "model.pt").read_bytes()


def test_real_full_disk_on_a_small_tmpfs_then_resume_with_space(setup):
    """The checkpoints folder on a tmpfs that holds two checkpoints but not a third (two are kept): the save of
    step 6 really runs out of space (torch.save then fails without an errno). Where mounting is not permitted,
    the fault is injected instead."""
    env, ws, corpus = setup
    run, ckpts = "tmpfs", ws / "pocket" / "tmpfs" / "checkpoints"
    size = sum(f.stat().st_size for f in (ws / "pocket" / "ref" / "checkpoints" / "step-000000006").rglob("*"))
    with _load("fault_driver", DRIVER).mounted("tmpfs", ckpts, f"size={int(2.5 * size)}") as ok:
        fault = None if ok else ["--at", "torch:save", "--match", r"\.tmp-step-000000006", "--fault", "enospc"]
        out = train(env, ws, corpus, run, fault)
        assert out.returncode == 1, out.stderr[-3000:]
        message = error_line(out.stderr)
        assert message.startswith(f"ERROR: Disk full while writing checkpoint step-000000006 to {ckpts}: "), message
        assert "The last complete checkpoint, step-000000004 " in message
        assert sorted(p.name for p in ckpts.iterdir()) == ["step-000000002", "step-000000004"]
        assert read_records(Workspace(ws), STAGE)[-1]["status"] == "failed"
        if ok:  # space freed: the same disk made larger
            assert subprocess.run(["mount", "-o", f"remount,size={20 * size}", str(ckpts)]).returncode == 0
        resumed = train(env, ws, corpus, run)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_matches_reference(ws, run)


def test_read_only_workspace_is_refused_before_training(setup, tmp_path):
    env, _, corpus = setup
    ro = tmp_path / "ro_ws"
    ro.mkdir()
    # EROFS injected on every write under the workspace (tests/reliability/parler mounts a real read-only one)
    out = train(env, ro, corpus, "ro", ["--at", "io:open", "--match", "^" + str(ro), "--fault", "erofs"])
    assert out.returncode == 1, out.stderr[-3000:]
    message = error_line(out.stderr)
    assert message.startswith(f"ERROR: the workspace {ro} cannot be written (Read-only file system)"), message
    assert "--workspace DIR" in message
    assert not any(ro.iterdir())
