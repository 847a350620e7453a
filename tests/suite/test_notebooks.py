"""Notebook hygiene: committed without outputs, numbered, with a parameters cell and a known kernel."""

import ast
import json

import pytest

from nbhelpers.suite import NOTEBOOK_DIR, NUMBERED

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNELS = {"tts-main", "tts-parler"}


def test_there_are_notebooks():
    assert any(nb.name.startswith("00_") for nb in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_parameterised(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert NUMBERED.match(path.name), "notebooks are named NN_name.ipynb"
    assert nb["metadata"]["kernelspec"]["name"] in KERNELS
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"code cell {i} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell must be tagged 'parameters'"
    assert tagged[0] is code[0], "the parameters cell is the first code cell"
    names = {t.id for node in ast.walk(ast.parse("".join(tagged[0]["source"])))
             if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert {"profile", "workspace"} <= names
    for cell in code:
        ast.parse("".join(cell["source"]))  # every cell is valid Python (no shell magics)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reports_environment(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert any("environment_report(" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_installs_its_own_stage_on_kaggle(path):
    """One install cell per notebook, naming the notebook's own stage, whose stack matches the kernel."""
    from nbhelpers.bootstrap import STAGES

    nb = json.loads(path.read_text(encoding="utf-8"))
    calls = [c for c in nb["cells"] if c["cell_type"] == "code" and "install_stage(" in "".join(c["source"])]
    assert len(calls) == 1, "exactly one cell calls nbhelpers.bootstrap.install_stage"
    assert f'install_stage("{path.stem}")' in "".join(calls[0]["source"])
    assert f"tts-{STAGES[path.stem][0]}" == nb["metadata"]["kernelspec"]["name"]
