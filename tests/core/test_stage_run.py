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
