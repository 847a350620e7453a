"""The notebooks' Try-it forms (``nb.try_it``) built for real under both platforms' widget libraries: ipywidgets
8.1.5 (Kaggle: the kernel stack, ``requirements-kernel.in``) and 7.7.1 (Colab's freeze in ../shared/platforms, a
throwaway venv made with the suite's pinned uv); and the plain fallback under papermill (no one to click)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nbhelpers import nb as nbmod
from nbhelpers import stacks
from nbhelpers.paths import PROJECT_ROOT

# Colab's kernel packages (colab-gpu-2026-08-19.pip-freeze.txt): Kaggle's ipykernel/ipython with ipywidgets 7
COLAB_WIDGETS = ["ipywidgets==7.7.1", "ipykernel==6.17.1", "ipython==7.34.0", "traitlets==5.7.1",
                 "jupyter_client==7.4.9"]
PROBE = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.instance()  # a shell without a kernel: widgets open no comm, display() prints their repr
import ipywidgets
from nbhelpers import nb

calls = []
def action(**values):
    calls.append(values)
    if len(calls) == 2:
        raise nb.StageFailed("speak failed: exit status 1")
form = nb.try_it({"text": "ನಮಸ್ಕಾರ", "voice": "A calm female voice, close up, " * 3, "backend": ["auto", "onnx"]},
                 action)
text, voice, backend, button, out = form.children
text.value, backend.value = "ಕನ್ನಡ", "onnx"
button.click()
button.click()  # the failure is shown in the form's output, not raised
print(json.dumps({"version": ipywidgets.__version__, "types": [type(w).__name__ for w in form.children],
                  "text_state": text.get_state(), "calls": calls, "width": text.layout.width,
                  "options": list(backend.options)}))
"""


def _colab_python() -> Path:
    """A venv with Colab's widget packages, built once into the suite's cache (aside, then renamed)."""
    folder = stacks.cache_root() / "test-venvs" / ("colab-widgets-" + "-".join(COLAB_WIDGETS).replace("==", ""))
    if not (folder / "bin" / "python").is_file():
        uv, tmp = stacks.ensure_uv(), folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        env = {**os.environ, "UV_CACHE_DIR": str(stacks.cache_root() / "uv"), "UV_LINK_MODE": "hardlink",
               "VIRTUAL_ENV": "", "UV_PYTHON_DOWNLOADS": "never"}
        shutil.rmtree(tmp, ignore_errors=True)
        for cmd in ([str(uv), "venv", "-q", "--python", stacks.find_python(), str(tmp)],
                    [str(uv), "pip", "install", "-q", "--python", str(tmp / "bin" / "python"), *COLAB_WIDGETS]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"building the ipywidgets 7 venv failed ({' '.join(cmd[:3])}):\n{done.stderr}"
        tmp.rename(folder)
    return folder / "bin" / "python"


def _probe(python: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TTS_HEADLESS", "VIRTUAL_ENV")}
    done = subprocess.run([str(python), "-c", PROBE], env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(900)
@pytest.mark.parametrize("platform", ["kaggle", "colab"])
def test_try_it_form_builds_and_runs_its_action_on_both_widget_versions(platform: str) -> None:
    python = stacks.stack_python("kernel") if platform == "kaggle" else _colab_python()
    assert python.is_file(), f"{python} missing: run `make setup` (builds the kernel stack)"
    got = _probe(python)
    major = {"kaggle": "8.1.5", "colab": "7.7.1"}[platform]
    assert got["version"] == major
    assert got["types"] == ["Text", "Textarea", "Dropdown", "Button", "Output"]
    assert got["text_state"]["value"] == "ಕನ್ನಡ" and got["text_state"]["description"] == "text"
    assert got["text_state"]["_model_module_version"] == {"8.1.5": "2.0.0", "7.7.1": "1.5.0"}[major]
    assert got["width"] == "90%" and got["options"] == ["auto", "onnx"]
    assert len(got["calls"]) == 2 and got["calls"][0]["text"] == "ಕನ್ನಡ" and got["calls"][0]["backend"] == "onnx"
    assert got["calls"][0]["voice"].startswith("A calm female voice")


def test_try_it_prints_the_fields_under_papermill(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TTS_HEADLESS", "1")  # what the suite runner sets for papermill
    called = []
    assert nbmod.try_it({"text": "ನಮಸ್ಕಾರ", "backend": ["auto", "onnx"]}, lambda **kw: called.append(kw)) is None
    out = capsys.readouterr().out
    assert "Try it" in out and "text = ನಮಸ್ಕಾರ; backend = auto" in out and not called
