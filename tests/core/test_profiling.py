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
