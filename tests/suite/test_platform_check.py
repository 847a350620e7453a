"""The platform check's own logic (scripts/platform_check.py), offline: what a replica installs, how a change
of the kernel's packages is reported, and the loud failure when the platform's Python is missing. The check
itself (`make platform-check`) runs the smoke chain on the replicas; see docs/platforms.md."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "platform_check.py"


@pytest.fixture(scope="module")
def pc():
    spec = importlib.util.spec_from_file_location("platform_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("platform_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def platform_lists(pc, tmp_path, monkeypatch):
    """Small stand-ins for the published package lists of ../shared/platforms."""
    (tmp_path / "colab-gpu-2026-05-08.pip-freeze.txt").write_text(
        "ipykernel==6.17.1\nipywidgets==7.7.1\nwidgetsnbextension==3.6.10\nnumpy==2.0.2\nprotobuf==5.29.6\n"
        "setuptools==75.2.0\nnbconvert==7.17.1\nmistune==3.2.0\nsix==1.17.0\n"
        "google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\n")
    (tmp_path / "colab-gpu-2026-05-08.os-info.txt").write_text("Ubuntu 22.04.5 LTS\nPython 3.12.13\n")
    (tmp_path / "kaggle-2026-08-12.kaggle_requirements.txt").write_text(
        "# keep sorted\nBoruta\nipywidgets==8.1.5\nnbconvert==6.4.5\npapermill\ntransformers>=5.0.0\n")
    (tmp_path / "colab-gpu-2026-08-19.pip-freeze.txt").write_text("ipykernel==6.17.1\nipywidgets==7.7.1\n")
    (tmp_path / "colab-gpu-2026-08-19.os-info.txt").write_text("Python 3.13.15\n")
    monkeypatch.setattr(pc, "PLATFORMS_DIR", tmp_path)
    return tmp_path


def test_kaggle_replica_takes_kaggles_pins_over_the_freeze(pc, platform_lists):
    kaggle = pc.platforms()["kaggle"]
    assert kaggle.real_python == "3.12.13" and kaggle.python == "3.12"
    requirements, constraints = pc._inputs(kaggle, Path("python3.12"))
    req = requirements.split()
    assert {"ipywidgets==8.1.5", "nbconvert==6.4.5", "papermill", "protobuf==5.29.5", "setuptools>=70,<82"} <= set(req)
    assert "ipykernel" in req and "numpy" in req
    assert "transformers>=5.0.0" not in req and "Boruta" not in req  # not touched by a kernel
    cons = constraints.split()
    assert "ipykernel==6.17.1" in cons and "six==1.17.0" in cons
    for changed in ("ipywidgets", "widgetsnbextension", "nbconvert", "mistune", "protobuf", "setuptools"):
        assert not any(c.startswith(changed + "==") for c in cons), changed
    assert not any("google" in c for c in cons)  # URL installs are not on the index
    assert "--IPKernelApp.matplotlib=inline" in kaggle.kernel_args  # numpy imported at kernel start


def test_colab_replica_installs_only_what_colab_ships(pc, platform_lists):
    colab = pc.platforms()["colab"]
    requirements, constraints = pc._inputs(colab, Path("python3.13"))
    assert requirements.split() == ["ipykernel", "ipywidgets"]  # kernel packages present in Colab's freeze
    assert constraints.split() == ["ipykernel==6.17.1", "ipywidgets==7.7.1"]
    assert colab.freeze_only and colab.env["COLAB_RELEASE_TAG"]


def test_a_changed_kernel_package_is_reported_and_fails_the_check(pc):
    before = {"numpy": "2.0.2", "six": "1.17.0", "protobuf": "5.29.5"}
    after = {"numpy": "2.4.1", "six": "1.17.0", "torch": "2.8.0"}
    changes = pc.diff_freeze(before, after)
    assert changes == ["+ torch==2.8.0", "- protobuf==5.29.5", "~ numpy 2.0.2 -> 2.4.1"]
    outcome = pc.Outcome("kaggle", notebooks_ok=3, notebooks=3, changed=changes)
    assert not outcome.ok
    assert "| kaggle |" in pc.summary([outcome]) and "FAILED" in pc.summary([outcome])
    assert pc.Outcome("colab", notebooks_ok=3, notebooks=3).ok
    assert not pc.Outcome("colab", notebooks_ok=2, notebooks=3).ok
    assert not pc.Outcome("colab").ok  # nothing ran: not a pass


def test_a_missing_platform_python_fails_loudly(pc, tmp_path, monkeypatch):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.delenv("TTS_PYTHON_39", raising=False)
    monkeypatch.setattr(pc.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="PLATFORM CHECK CANNOT RUN: no Python 3.9"):
        pc.platform_python("3.9")


def test_kernelspec_carries_the_platforms_argv_and_environment(pc, platform_lists, tmp_path):
    import json

    kaggle = pc.platforms()["kaggle"]
    inputs = pc.fake_kaggle_input(tmp_path / "run")
    pc.write_kernelspec(kaggle, tmp_path / "replica", tmp_path / "jupyter", inputs)
    spec = json.loads((tmp_path / "jupyter" / "kernels" / "replica-kaggle" / "kernel.json").read_text())
    assert spec["argv"][0] == str(tmp_path / "replica" / "bin" / "python")
    assert spec["argv"][-1] == "--IPKernelApp.matplotlib=inline"
    assert spec["env"]["KAGGLE_KERNEL_RUN_TYPE"] == "Batch" and spec["env"]["TTS_KAGGLE_INPUT"] == str(inputs)
    assert spec["env"]["PYTHONPATH"] == ""  # the set-up cell must find the code itself
    assert not inputs.stat().st_mode & 0o222  # read-only (root ignores that: the check looks for writes after a run)
