"""records.stage_run: a stage's run log says started, then exactly one final record, whatever happens."""

from __future__ import annotations

import pytest

from nbhelpers.paths import Workspace
from nbhelpers.records import RecordedTwiceError, append_stage_record, read_records, stage_run


def statuses(ws: Workspace) -> list[str]:
    return [r["status"] for r in read_records(ws, "99_test")]


def test_a_finished_run_says_started_then_done(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_STAGE_LOG", str(tmp_path / "stage.log"))
    ws = Workspace(tmp_path)
    with stage_run("99_test", profile="smoke", workspace=ws, inputs={"x": 1}) as run:
        append_stage_record("99_test", profile="smoke", status="resume_needed", workspace=ws)
    assert statuses(ws) == ["started", "resume_needed"] and run.status == "resume_needed"
    started = read_records(ws, "99_test")[0]
    assert started["log"] == str(tmp_path / "stage.log") and started["inputs"] == {"x": 1}


def test_an_error_is_recorded_once_with_the_error_and_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_STAGE_LOG", "/logs/x.log")
    ws = Workspace(tmp_path)
    with pytest.raises(KeyError), stage_run("99_test", profile="smoke", workspace=ws):
        raise KeyError("no such speaker")
    failed = read_records(ws, "99_test")[-1]
    assert statuses(ws) == ["started", "failed"]
    assert "KeyError" in failed["error"] and "no such speaker" in failed["error"] and failed["log"] == "/logs/x.log"


def test_a_stage_that_records_its_own_failure_is_not_recorded_twice(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(ValueError), stage_run("99_test", profile="smoke", workspace=ws):
        append_stage_record("99_test", profile="smoke", status="failed", workspace=ws, error="bad row 3")
        raise ValueError("bad row 3")
    assert statuses(ws) == ["started", "failed"]


def test_returning_without_a_result_is_a_failure(tmp_path):
    ws = Workspace(tmp_path)
    with stage_run("99_test", profile="smoke", workspace=ws):
        pass
    assert statuses(ws) == ["started", "failed"]
    assert "without recording" in read_records(ws, "99_test")[-1]["error"]


def test_a_second_final_record_is_refused(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(RecordedTwiceError), stage_run("99_test", profile="smoke", workspace=ws):
        append_stage_record("99_test", profile="smoke", status="done", workspace=ws)
        append_stage_record("99_test", profile="smoke", status="resume_needed", workspace=ws)
    assert statuses(ws) == ["started", "done"]


def test_ctrl_c_is_recorded_as_failed(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(KeyboardInterrupt), stage_run("99_test", profile="smoke", workspace=ws):
        raise KeyboardInterrupt
    assert statuses(ws) == ["started", "failed"]


def test_only_the_main_process_writes(tmp_path):
    ws = Workspace(tmp_path)
    with stage_run("99_test", profile="smoke", workspace=ws, main=False):
        pass
    assert statuses(ws) == []


def test_extra_metrics_join_the_final_record_and_the_stage_figures_win(tmp_path):
    ws = Workspace(tmp_path)
    with stage_run("99_test", profile="smoke", workspace=ws) as run:
        run.extra_metrics = lambda: {"gpu_util_pct": 40.0, "loss": -1}
        append_stage_record("99_test", profile="smoke", workspace=ws, metrics={"loss": 2.5})
    final = read_records(ws, "99_test")[-1]
    assert final["metrics"] == {"gpu_util_pct": 40.0, "loss": 2.5}


def test_run_guarded_records_utilisation_or_why_not(tmp_path):
    from nbhelpers.training import run_guarded

    ws = Workspace(tmp_path)

    def command() -> int:
        ballast = bytearray(64 * 2**20)  # resident memory the sampler must see
        ballast[::4096] = b"x" * len(ballast[::4096])
        append_stage_record("99_test", profile="smoke", workspace=ws, metrics={"step": 3})
        return 0

    assert run_guarded("99_test", "smoke", ws, command) == 0
    m = read_records(ws, "99_test")[-1]["metrics"]
    assert m["step"] == 3 and m["peak_rss_mib"] > 64
    import torch

    if not torch.cuda.is_available():
        assert m["gpu_util_pct"] is None and "not CUDA" in m["utilisation_note"]
    else:
        assert m["gpu_util_pct"] is not None and "samples" in m["utilisation_note"]
