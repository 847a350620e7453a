"""Smoke acceptance on CPU: a tiny VITS trains on the Bangla corpus, stops on a short time budget with a
checkpoint (kernel alive: the call returns), resumes with continue_path and the step counter continuing, then
publishes samples, losses and an ONNX model matching PyTorch. Randomly initialised: mechanics only."""

import shutil

import pytest
import soundfile as sf

from nbhelpers.budget import TimeBudget
from nbhelpers.checkpoint import latest_checkpoint
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples
from nbhelpers.vits import STAGE
from nbhelpers.vits.config import TEST_SENTENCES
from nbhelpers.vits.train import find_resumable_run, finish, prepare, resumable_checkpoint, train


class InterruptingBudget(TimeBudget):
    """A budget whose first step-end poll behaves like the user pressing the notebook's stop button."""

    def should_stop(self):
        raise KeyboardInterrupt


@pytest.fixture(scope="module")
def sessions(tmp_path_factory, corpus_template):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    shutil.copytree(corpus_template, ws.root / "data" / "bn_smoke")
    params = load_profile("vits", "smoke")
    first = train(prepare(params, ws, print_report=False), budget=TimeBudget(1.0))
    first.resumable = resumable_checkpoint(first.run_dir)  # what the next session will continue from
    prep2 = prepare(params, ws, print_report=False)
    second = train(prep2, max_steps=first.end_step + 2)
    done = finish(second, params, ws)
    return ws, params, first, prep2, second, done


def test_budget_stop_saves_and_returns(sessions):
    ws, _, first, *_ = sessions
    assert first.status == "resume_needed" and first.reason == "budget"
    assert first.start_step == 0 and first.end_step >= 1
    assert first.checkpoint is not None and first.checkpoint.name == f"checkpoint_{first.end_step}.pth"
    assert first.resumable == first.checkpoint
    rec = read_records(ws, STAGE)[0]
    assert rec["status"] == "resume_needed" and rec["metrics"]["stop_reason"] == "budget"


def test_resume_continues_step_counter(sessions):
    _, _, first, prep2, second, _ = sessions
    assert prep2.continue_dir == first.run_dir
    assert any(c.name == "resume" and c.ok for c in prep2.report.checks)
    assert second.run_dir == first.run_dir
    assert second.start_step == first.end_step + 1  # coqui resumes at the saved step + 1
    assert second.end_step == first.end_step + 2 and second.status == "done" and second.reason == "max_steps"
    assert second.checkpoint.is_file()


def test_outputs_and_record(sessions):
    ws, params, first, _, second, done = sessions
    out, metrics = done["outputs"], done["metrics"]
    bundle = latest_checkpoint(ws.stage_dir("vits", "model"))
    assert bundle == out["bundle"]
    assert {p.name for p in bundle.iterdir()} >= {"model.pth", "config.json", "model.onnx", "model.int8.onnx"}
    samples = read_samples(out["samples"])
    assert [r["text"] for r in samples] == list(TEST_SENTENCES)
    assert {r["model_state"] for r in samples} == {f"after {second.end_step} training steps from a random tiny start"}
    for row in samples:
        audio, sr = sf.read(row["path"])
        assert sr == 22050 and len(audio) > 2205 and row["seconds"] == round(len(audio) / sr, 3)
    assert out["loss_plot"].stat().st_size > 1000
    assert list(first.run_dir.glob("events.out.tfevents.*"))
    assert metrics["onnx_vs_pytorch"]["ok"], metrics["onnx_vs_pytorch"]
    assert set(metrics["cpu_rtf"]) == {"pytorch", "onnxruntime", "onnxruntime-int8"}
    assert metrics["int8_vs_fp32"]["ok"] and metrics["int8_vs_fp32"]["lengths_match"], metrics["int8_vs_fp32"]
    assert metrics["onnx_int8_speedup"] > 0
    rec = read_records(ws, STAGE)[-1]
    assert rec["status"] == "done" and rec["metrics"]["end_step"] == second.end_step
    assert rec["outputs"]["onnx"].endswith("model.onnx") and rec["outputs"]["onnx_int8"].endswith("model.int8.onnx")


def test_corrupt_newest_checkpoint_is_set_aside(sessions, tmp_path):
    _, _, _, _, second, _ = sessions
    run = tmp_path / "vits" / "runs" / second.run_dir.name
    run.mkdir(parents=True)
    shutil.copy2(second.run_dir / "config.json", run)
    shutil.copy2(second.checkpoint, run)
    partial = run / "checkpoint_999.pth"
    partial.write_bytes(second.checkpoint.read_bytes()[:4096])
    with pytest.warns(UserWarning, match="incomplete or corrupt"):
        assert find_resumable_run(Workspace(tmp_path)) == run
    assert resumable_checkpoint(run) == run / second.checkpoint.name
    assert (run / "incomplete" / "checkpoint_999.pth").is_file() and not partial.exists()
    from trainer.io import keep_n_checkpoints

    keep_n_checkpoints(run, 1)  # coqui's retention after the next save: the set-aside file is not a checkpoint to it
    assert (run / second.checkpoint.name).is_file()


def test_interrupt_saves_and_returns(sessions):
    ws, params, _, _, second, _ = sessions
    result = train(prepare(params, ws, print_report=False), budget=InterruptingBudget(60))
    assert result.reason == "interrupted" and result.status == "resume_needed"
    assert result.start_step == second.end_step + 1 and result.checkpoint.is_file()


def test_restore_path_fine_tune_starts_fresh_with_report(sessions):
    ws, params, _, _, second, _ = sessions
    prep = prepare(params, ws, restore_path=second.checkpoint, resume=False, print_report=False)
    assert prep.continue_dir is None and any(c.name == "restore" and c.ok for c in prep.report.checks)
    result = train(prep, max_steps=1, budget=TimeBudget(600), record=False)
    assert result.start_step == 0 and result.end_step == 1 and result.run_dir != second.run_dir
    assert result.restore.restored == result.restore.total and result.restore.reinitialised == []
