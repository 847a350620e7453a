"""Notebook hygiene and the kernel contract: committed without outputs, numbered, rendered set-up cell first,
parameters second, the platforms' plain python3 kernel, and cells that import only the light core."""

import ast
import json
import subprocess
import sys

import pytest

from nbhelpers import nb as nbmod
from nbhelpers.paths import PROJECT_ROOT
from nbhelpers.suite import NOTEBOOK_DIR, NUMBERED

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# What a notebook cell may import into the platform's kernel: the standard library, IPython, ipywidgets and the
# suite's light core (standard library only at import). Everything heavy runs in a stage's child process.
LIGHT_CORE = {"nbhelpers.nb", "nbhelpers.profiles", "nbhelpers.paths", "nbhelpers.records", "nbhelpers.env"}
KERNEL_PACKAGES = {"IPython", "ipywidgets"}
HEAVY = ("numpy", "torch", "pandas", "matplotlib", "transformers", "soundfile", "scipy", "psutil", "tqdm")


def _code(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_rendered_and_parameterised(path):
    book = json.loads(path.read_text(encoding="utf-8"))
    assert NUMBERED.match(path.name), "notebooks are named NN_name.ipynb"
    assert book["metadata"]["kernelspec"]["name"] == "python3", "the platforms' plain kernel"
    code = _code(path)
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"code cell {i} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
        ast.parse("".join(cell["source"]))  # every cell is valid Python (no shell magics)
    assert "setup" in code[0]["metadata"].get("tags", []), "the set-up cell is the first code cell"
    assert "".join(code[0]["source"]) == nbmod.setup_cell_source(nbmod.NOTEBOOK_STACKS[path.stem]), \
        "set-up cell differs from the rendered one: run `python -m nbhelpers.nb render`"
    assert "parameters" in code[1]["metadata"].get("tags", []), "the parameters cell follows the set-up cell"
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    names = {t.id for node in ast.walk(ast.parse("".join(code[1]["source"])))
             if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert {"profile", "workspace"} <= names
    intro = "".join(book["cells"][0]["source"])
    assert nbmod.badges(path.name) in intro, "Open in Colab / Kaggle links (python -m nbhelpers.nb render)"


def test_rendering_is_up_to_date():
    assert nbmod.render_all(write=False) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opening_box_says_what_where_how_long_and_what_you_get(path):
    intro = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    boxes = nbmod.load_opening()
    box = "\n".join(nbmod.opening_box(path.stem, boxes))
    assert box in intro, "the opening box is missing or stale: run `python -m nbhelpers.nb render`"
    for _, label in nbmod.OPENING_ROWS:
        assert f"| **{label}** |" in box
    assert boxes[path.stem]["t4_time"].startswith("estimate"), "a T4 time not measured here is marked as an estimate"
    assert boxes["measured"]["run"] in box, "the smoke time names the run that measured it"


def test_opening_box_source_names_a_missing_row(tmp_path):
    (tmp_path / "00_x.ipynb").write_text("{}")
    (tmp_path / "opening.toml").write_text('["00_x"]\nwhat = "something"\n')
    with pytest.raises(ValueError, match=r"opening\.toml: \[\"00_x\"\] lacks inputs, hardware, smoke_time"):
        nbmod.load_opening(tmp_path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_text_refers_to_nothing_outside_the_project(path):
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        text = "".join(cell["source"]).lower()
        for phrase in ("the issue", "issue's", "issue ", "the brief"):
            assert phrase not in text, f"cell {i} speaks of {phrase.strip()!r}: say what is meant instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_name_a_cell_reads_is_defined_by_an_earlier_cell(path, tmp_path):
    """A cell reading a variable that an edit removed from an earlier cell fails only when the notebook runs
    (a NameError deep into a rehearsal): ruff's undefined-name check over the cells in order finds it at once."""
    script = tmp_path / f"{path.stem}.py"
    script.write_text("\n\n".join("".join(c["source"]) for c in _code(path)) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F821",
                          "--config", "builtins = ['display', 'get_ipython']", "--output-format", "concise",
                          str(script)], capture_output=True, text=True)
    assert out.returncode == 0, f"{path.name}: {out.stdout.strip()} {out.stderr.strip()}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_import_only_the_light_core(path):
    for i, cell in enumerate(_code(path)[1:], start=1):
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                ok = (module in LIGHT_CORE or top in KERNEL_PACKAGES
                      or (top in sys.stdlib_module_names and top != "nbhelpers"))
                assert ok, (f"code cell {i} imports {module!r} into the kernel: run that work in a stage's child "
                            f"process (nb.run) and only display its outputs")


def test_light_core_imports_nothing_heavy_in_the_plain_kernel():
    """The plain kernel `make demo` uses has no numpy/torch at all, and the light core needs none."""
    python = PROJECT_ROOT / ".venv-kernel" / "bin" / "python"
    probe = ("import sys\nimport " + ", ".join(sorted(LIGHT_CORE)) + "\n"
             "from nbhelpers.profiles import load_profile\nload_profile('parler', 'smoke')\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
             "import importlib.util\nprint(importlib.util.find_spec('numpy') is None)")
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}).stdout.split("\n")
    assert out[0] == "[]", f"the light core imported {out[0]}"
    assert out[1] == "True", "the plain kernel must not have numpy, or heavy imports would go unnoticed"
