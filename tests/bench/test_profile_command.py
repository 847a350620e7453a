"""`python -m nbhelpers.bench profile`: traces per variant into the workspace, and a clear refusal when nothing
matches."""

import json
import os
import subprocess
import sys

from nbhelpers.paths import PROJECT_ROOT

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def _profile(ws, *extra):
    return subprocess.run([sys.executable, "-m", "nbhelpers.bench", "profile", "--profile", "smoke", "--workspace",
                           str(ws), "--set", 'languages=["en"]', "--calls", "2", *extra],
                          env=ENV, capture_output=True, text=True, timeout=300)


def test_profile_writes_a_trace_and_table_per_variant(tmp_path):
    done = _profile(tmp_path, "--match", "piper-joe / onnxruntime[CPU] / float32")
    assert done.returncode == 0, done.stderr[-2000:]
    view = json.loads((tmp_path / "bench" / "profile" / "profile.json").read_text())
    (result,) = view["results"]
    assert result["calls"] == 2 and result["language"] == "en"
    assert json.loads(open(result["trace"]).read())["traceEvents"] is not None
    assert result["outside_torch_ops_pct"] > 90  # ONNX Runtime's work is invisible to torch.profiler, and says so


def test_profile_without_a_matching_variant_names_the_variants(tmp_path):
    done = _profile(tmp_path, "--match", "no-such-system")
    assert done.returncode == 2 and "no variant to profile matches 'no-such-system'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "piper-joe" in done.stderr
