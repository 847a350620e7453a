"""The files notebook 04 shows: pre-flight JSON (also for a failed pre-flight), the session a later `finish` process
reads back, and the timing table rendered from the record's metrics."""

import json
import math
from pathlib import Path

from nbhelpers.paths import Workspace
from nbhelpers.records import write_json
from nbhelpers.vits.preflight import Check, PreflightReport
from nbhelpers.vits.report import (
    newest_session,
    session_dict,
    timing_markdown,
    timing_rows,
    write_preflight,
    write_timing,
)
from nbhelpers.vits.train import TrainResult, load_session, train_metrics

METRICS = {
    "onnx_vs_pytorch": {"max_abs_diff": 4e-8, "lengths_match": True, "tolerance": 1e-3, "ok": True},
    "int8_vs_fp32": {"ok": False, "lengths_match": True, "max_convergence": 0.25, "spectral_convergence_max": 0.4},
    "cpu_rtf": {name: {"rtf": rtf, "latency_s_median": 0.1, "peak_rss_mib": 900.0, "disk_mib": 1.3}
                for name, rtf in (("pytorch", 0.2), ("onnxruntime", 0.1), ("onnxruntime-int8", 0.05))},
}


def test_timing_table_rows_markdown_and_checks(tmp_path):
    rows = timing_rows(METRICS)
    assert [r["backend"] for r in rows] == ["pytorch", "onnxruntime", "onnxruntime-int8"]
    assert [round(r["speedup_vs_pytorch"], 2) for r in rows] == [1.0, 2.0, 4.0]
    text = timing_markdown(METRICS)
    assert "| onnxruntime-int8 | 0.0500 | 4.00x |" in text
    assert "**ok**" in text and "**FAILED**" in text  # fp32 passed, int8 failed
    written = write_timing(METRICS, tmp_path)
    assert json.loads(written["timing_table"].read_text())["checks"]["int8_vs_fp32"]["ok"] is False
    assert written["timing_markdown"].read_text() == text
    assert "export_onnx = false" in timing_markdown({})
    assert math.isnan(timing_rows({"cpu_rtf": {"onnxruntime": {**METRICS["cpu_rtf"]["pytorch"]}}})[0]["speedup_vs_pytorch"])


def test_failed_preflight_json_lists_every_check(tmp_path):
    report = PreflightReport([Check("environment", True, "CPU only"), Check("dataset", False, "missing. Fix: ...")])
    path = write_preflight(Workspace(tmp_path), report)
    data = json.loads(path.read_text())
    assert path == tmp_path / "vits" / "preflight.json" and data["ok"] is False
    assert [c["check"] for c in data["checks"]] == ["environment", "dataset"] and "start" not in data


def test_session_round_trip_keeps_what_finish_needs(tmp_path):
    run = tmp_path / "runs" / "r1"
    result = TrainResult("budget", run, 0, 7, 12.5, run / "checkpoint_7.pth", losses={"loss_mel": 99.0},
                         restore_summary={"restored": 10})
    write_json(run / "session.json", session_dict(result, train_metrics(result)))
    assert newest_session(tmp_path / "runs") == run / "session.json"
    back = load_session(run / "session.json")
    assert (back.status, back.reason, back.run_dir, back.end_step, back.checkpoint) == \
        ("resume_needed", "budget", run, 7, run / "checkpoint_7.pth")
    metrics = train_metrics(back)
    assert metrics["processes"] == 1 and metrics["restore"] == {"restored": 10} and metrics["train_loss_mel"] == 99.0
    assert newest_session(Path(tmp_path / "none")) is None
