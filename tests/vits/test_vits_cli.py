"""The command line reports a failed pre-flight with its fix and exit code 2 instead of a traceback."""

import subprocess
import sys

from nbhelpers.paths import PROJECT_ROOT


def test_preflight_cli_reports_missing_dataset(tmp_path, bn_dataset):
    missing = tmp_path / "missing"
    out = subprocess.run([sys.executable, "-m", "nbhelpers.vits", "preflight", "--profile", "smoke",
                          "--workspace", str(tmp_path / "ws"), "--dataset-dir", str(missing)],
                         capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "pre-flight failed" in out.stderr and str(missing) in out.stderr and "Fix" in out.stderr
    ok = subprocess.run([sys.executable, "-m", "nbhelpers.vits", "preflight", "--profile", "smoke",
                         "--workspace", str(tmp_path / "ws"), "--dataset-dir", str(bn_dataset)],
                        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "[ok] characters" in ok.stdout
