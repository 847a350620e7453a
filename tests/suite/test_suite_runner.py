"""The papermill suite runner on small fixture notebooks, using the real plain python3 kernel (.venv-kernel)."""

import json

import nbformat
import pytest

from nbhelpers.suite import discover, main, run_suite


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "auto"\nworkspace = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "01_ok.ipynb", [
        "from nbhelpers.records import append_stage_record\nfrom nbhelpers.paths import Workspace",
        "assert profile == 'smoke'\nappend_stage_record('01_ok', profile=profile, workspace=Workspace(workspace), "
        "metrics={'loss_first': 2.5, 'loss_last': 0.5})",
    ])
    _notebook(d / "02_broken.ipynb", ["x = 1", "raise ValueError('bad corpus row 7')"])
    _notebook(d / "03_later.ipynb", ["print('never reached')"])
    (d / "helper.ipynb").write_text("{}")  # not numbered: ignored
    return d


def test_runner_reports_success_failure_and_stops(notebooks, tmp_path):
    out, results = run_suite("smoke", out=tmp_path / "run", notebooks_dir=notebooks)
    assert [r.status for r in results] == ["ok", "failed", "not run"]
    assert results[0].metrics == {"loss_first": 2.5, "loss_last": 0.5}
    assert "ValueError: bad corpus row 7" in results[1].error and "cell" in results[1].error
    executed = nbformat.read(out / "executed" / "02_broken.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][1]["status"] == "failed"
    md = (out / "summary.md").read_text()
    assert "| 01_ok.ipynb | python3 | ok |" in md and "loss_last=0.5" in md


def test_runner_only_and_keep_going(notebooks, tmp_path):
    _, results = run_suite("smoke", only=["2", "03"], out=tmp_path / "r2", notebooks_dir=notebooks, keep_going=True)
    assert [(r.notebook, r.status) for r in results] == [("02_broken.ipynb", "failed"), ("03_later.ipynb", "ok")]
    with pytest.raises(SystemExit, match="do not exist: 09"):
        discover(notebooks, ["09"])


def test_benchmark_notebook_runs_after_every_other_stage(tmp_path):
    for name in ("00_environment", "05_kokoro_synthesis", "06_benchmark", "07_pocket_tts_finetune"):
        _notebook(tmp_path / f"{name}.ipynb", ["x = 1"])
    assert [p.name[:2] for p in discover(tmp_path)] == ["00", "05", "07", "06"]
    assert [p.name[:2] for p in discover(tmp_path, ["6", "5"])] == ["05", "06"]


def test_cli_exit_code(notebooks, tmp_path):
    assert main(["run", "--profile", "smoke", "--only", "01", "--notebooks", str(notebooks),
                 "--out", str(tmp_path / "r3")]) == 0
    assert main(["run", "--profile", "smoke", "--only", "02", "--notebooks", str(notebooks),
                 "--out", str(tmp_path / "r4")]) == 1


def test_summary_puts_quality_and_loss_figures_first():
    from nbhelpers.suite import _key_metrics

    record = {"metrics": {"step": 16, "params": 3, "nested": {"a": 1}, "loss_last": 3.6, "rtf": 0.2, "x": 1}}
    assert list(_key_metrics(record)) == ["loss_last", "rtf", "step", "params"]
    assert _key_metrics(None) == {}
