"""Fixtures for the kaggle_kernels tests: fake credentials in an isolated HOME, a fake Kaggle API server on
127.0.0.1, a small kernels config with fixture notebooks, and a runner for the real CLI in a subprocess
(the kaggle client authenticates at import time, so every client call happens in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbhelpers import nb as nbcell
from nbhelpers.rehearsal.kaggle_api import FakeKaggle

PROJECT = Path(__file__).resolve().parents[2]
USER = "alice"
SECRET_KEY = "k4gg1e-SECRET-0f9e8d7c6b5a4f3e2d1c0b9a"


def write_notebook(path: Path) -> Path:
    """A small notebook shaped like the suite's: python3 kernelspec, the set-up cell rendered by nbhelpers.nb
    for its stem, a parameters cell, one code cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(nbcell.KERNELSPEC)
    setup = nbcell.setup_cell_source(nbcell.NOTEBOOK_STACKS[path.stem])
    nb.cells = [nbformat.v4.new_markdown_cell("# fixture"),
                nbformat.v4.new_code_cell(setup, metadata={"tags": [nbcell.SETUP_TAG]}),
                nbformat.v4.new_code_cell('profile = "auto"\nworkspace = None', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(profile, workspace)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


CONFIG = """
[suite]
owner = ""
slug_prefix = "tts-suite"
test_slug_prefix = "tts-suite-test"
code_dataset = "tts-suite-code"
install = "dataset"
machine_shape = "NvidiaTeslaT4"
enable_gpu = true
enable_internet = true
is_private = true
profile = "kaggle-t4"
test_profile = "smoke"
workspace = "/kaggle/working"
max_sessions = 5
resume_via = "auto"

[kernels.01_data_prep]
notebook = "{nb}/01_data_prep.ipynb"
enable_gpu = false

[kernels.02_parler_finetune]
notebook = "{nb}/02_parler_finetune.ipynb"
after = ["01_data_prep"]
chain = true
parameters = {{ max_steps = 100 }}

[kernels.09_bad_sources]
notebook = "{nb}/01_data_prep.ipynb"
dataset_sources = ["alice/no-such-dataset"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Config file path of a small suite with fixture notebooks."""
    nbdir = tmp_path / "notebooks"
    write_notebook(nbdir / "01_data_prep.ipynb")
    write_notebook(nbdir / "02_parler_finetune.ipynb")
    cfg = tmp_path / "kernels.toml"
    cfg.write_text(CONFIG.format(nb=nbdir))
    return cfg


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An isolated HOME whose ~/.kaggle/kaggle.json holds fake credentials."""
    h = tmp_path / "home"
    (h / ".kaggle").mkdir(parents=True)
    cred = h / ".kaggle" / "kaggle.json"
    cred.write_text(json.dumps({"username": USER, "key": SECRET_KEY}))
    cred.chmod(0o600)
    return h


@pytest.fixture
def fake():
    with FakeKaggle(USER, SECRET_KEY) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, home: Path, project: Path, fake: FakeKaggle):
    """Run ``python -m kaggle_kernels <args> --test`` against the fake server; returns CompletedProcess."""
    out = tmp_path / "out"

    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        env = fake.client_env(home)
        timing = ["--poll-seconds", "0.02", "--poll-max-seconds", "0.05", "--retry-seconds", "0.02",
                  "--timeout", "45"]  # fast polls; a session that never ends fails the test instead of hanging
        cmd = [sys.executable, "-m", "kaggle_kernels", *args, "--test", "--config", str(project), "--out", str(out),
               *timing]
        return subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout)

    run.out = out
    return run
