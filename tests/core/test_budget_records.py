"""Time budget look-ahead and the stage run log."""

import json

import pytest

from nbhelpers.budget import TimeBudget
from nbhelpers.records import append_stage_record, last_record, read_records


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_budget_stops_one_step_early():
    clock = FakeClock()
    budget = TimeBudget(100, margin=10, clock=clock)
    budget.tick()
    clock.t += 30          # a 30 s step
    budget.tick()
    assert not budget.should_stop()   # 70 s left > 10 s margin + 30 s step
    clock.t += 30
    budget.tick()
    assert budget.should_stop()       # 40 s left <= 40: the next step could overrun
    assert budget.remaining() == pytest.approx(40)


def test_budget_from_profile_and_validation():
    b = TimeBudget.from_profile({"budget_hours": 12, "budget_margin_minutes": 45}, session_start=False)
    assert b.seconds == 43200 and b.margin == 2700 and not b.should_stop()
    with pytest.raises(ValueError):
        TimeBudget(0)


def test_records_append_read_and_torn_line(isolated_workspace):
    append_stage_record("02_parler_finetune", profile="smoke", status="resume_needed", metrics={"step": 5})
    append_stage_record("02_parler_finetune", profile="smoke", metrics={"step": 9, "loss": 1.5})
    append_stage_record("01_data_prep", profile="smoke", outputs={"dir": isolated_workspace / "data"})
    log = isolated_workspace / "run_log.jsonl"
    with log.open("a") as f:
        f.write('{"stage": "03_parler_distill", "sta')  # a writer killed mid-line
    recs = read_records(stage="02_parler_finetune")
    assert [r["status"] for r in recs] == ["resume_needed", "done"]
    assert last_record(stage="02_parler_finetune")["metrics"] == {"step": 9, "loss": 1.5}
    assert read_records(log, stage="01_data_prep")[0]["outputs"]["dir"].endswith("data")
    assert all("environment" in json.loads(line) for line in log.read_text().splitlines()[:3])
    with pytest.raises(ValueError, match="status must be one of"):
        append_stage_record("x", profile="smoke", status="finished")
