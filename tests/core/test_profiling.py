"""torch.profiler traces: the dominant operator of a known workload comes first, files are written atomically, and
work outside PyTorch operators shows as such."""

import json
import time

import pytest
import torch

from nbhelpers.measure.profiling import profile_calls


def test_matmul_workload_is_dominated_by_its_matmul(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256))
    x = torch.randn(64, 256)
    summary = profile_calls(lambda i: model(x), 4, tmp_path, "mlp")
    top = summary["top"][0]
    assert top["operator"] in ("aten::addmm", "aten::mm", "aten::linear") and top["share %"] > 50
    assert top["calls"] == 4 * 2 or top["operator"] == "aten::linear"
    trace = json.loads((tmp_path / "mlp.trace.json").read_text())
    assert trace["traceEvents"] and json.loads((tmp_path / "mlp.top.json").read_text())["top"] == summary["top"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_time_outside_torch_operators_is_reported(tmp_path):
    summary = profile_calls(lambda i: time.sleep(0.02), 3, tmp_path, "sleep")
    assert summary["wall_ms"] >= 60 and summary["outside_torch_ops_pct"] > 90
    with pytest.raises(ValueError, match="n must be >= 1"):
        profile_calls(lambda i: None, 0, tmp_path, "none")


def test_step_profiler_traces_n_loop_steps_after_the_warmup(tmp_path):
    """A training loop calls StepProfiler.step() after each step: step 1 runs untraced, steps 2..n+1 are traced,
    later steps are not; a loop that stops early writes what was traced; n = 0 traces nothing."""
    from nbhelpers.measure.profiling import StepProfiler

    model = torch.nn.Linear(128, 128)
    x = torch.randn(32, 128)
    prof = StepProfiler(2, tmp_path, "loop")
    for _ in range(5):
        model(x).sum().backward()
        prof.step()
    assert prof.summary["calls"] == 2 and prof.summary["warmup"] == 1
    assert any(r["operator"] in ("aten::addmm", "aten::mm") for r in prof.summary["top"])
    assert (tmp_path / "loop.trace.json").is_file() and prof.close() == prof.summary

    early = StepProfiler(10, tmp_path / "early", "loop")
    for _ in range(3):  # the budget stopped the loop after three steps: two of them traced
        model(x).sum().backward()
        early.step()
    assert early.summary is None and early.close()["calls"] == 2
    off = StepProfiler(0, tmp_path / "off", "loop")
    off.step()
    assert off.close() is None and not (tmp_path / "off").exists()


def test_a_profiled_run_shows_its_top_operators_in_the_notebook(tmp_path, capsys):
    """The record keeps the steps traced and the two files (record_fields); nb.profile shows the table and names
    the trace, and shows nothing for a run that was not profiled."""
    from nbhelpers import nb
    from nbhelpers.measure.profiling import StepProfiler, record_fields

    model = torch.nn.Linear(64, 64)
    prof = StepProfiler(1, tmp_path, "tiny_train")
    for _ in range(2):
        model(torch.randn(8, 64)).sum().backward()
        prof.step()
    metrics = record_fields(prof.summary)
    assert metrics == {"profiled_steps": 1, "profile_trace": str(tmp_path / "tiny_train.trace.json"),
                       "profile_table": str(tmp_path / "tiny_train.top.json")}
    nb.profile(metrics)
    shown = capsys.readouterr().out
    assert "where 1 profiled training steps spent their time" in shown and prof.summary["top"][0]["operator"] in shown
    assert str(tmp_path / "tiny_train.trace.json") in shown
    nb.profile({"final_loss": 1.0})
    assert capsys.readouterr().out == "" and record_fields(None) == {}
