"""Kernel folders, config checks and the packaged suite: local only, the kaggle client is never imported."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from kaggle_kernels.build import SUITE_ARCHIVE, build_kernel, package_suite
from kaggle_kernels.config import PROJECT_ROOT as PROJECT
from kaggle_kernels.config import ConfigError, load_config


def test_build_kernel_folder_bakes_parameters_and_metadata(project: Path, tmp_path: Path):
    cfg = load_config(project, owner="alice", test=True)
    spec = cfg.kernel("02_parler_finetune", {"seed": 7})
    folder = build_kernel(spec, cfg, tmp_path / "kernels")
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert folder.name == "tts-suite-test-02-parler-finetune"
    assert meta["id"] == "alice/tts-suite-test-02-parler-finetune"
    assert meta["title"] == "tts suite test 02 parler finetune"
    assert (meta["enable_gpu"], meta["machine_shape"], meta["is_private"], meta["enable_internet"]) == \
        (True, "NvidiaTeslaT4", True, True)
    assert meta["dataset_sources"] == ["alice/tts-suite-code"]
    assert meta["kernel_sources"] == ["alice/tts-suite-test-01-data-prep"]
    nb = nbformat.read(folder / meta["code_file"], as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "kaggle-install" in nb.cells[0].metadata["tags"] and "tts_suite.zip" in nb.cells[0].source
    assert "install_stack" not in nb.cells[0].source  # the notebook's own install cell installs the stack
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    namespace: dict = {}
    exec(injected[0].source, namespace)  # the baked values, as the kernel will see them
    assert (namespace["profile"], namespace["workspace"], namespace["max_steps"], namespace["seed"]) == \
        ("smoke", "/kaggle/working", 100, 7)
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")
    # the kaggle client's own title rule: the title must slugify to the kernel slug
    from slugify import slugify
    assert slugify(meta["title"]) == meta["id"].split("/")[1]


def test_install_cell_runs_from_an_unextracted_archive(project: Path, tmp_path: Path):
    """The first cell finds the suite zip under an input tree and makes nbhelpers importable."""
    cfg = load_config(project, owner="alice")
    folder = package_suite(cfg, tmp_path / "datasets")
    nb = nbformat.read(build_kernel(cfg.kernel("01_data_prep"), cfg, tmp_path / "k") /
                       "tts-suite-01-data-prep.ipynb", as_version=4)
    inputs = tmp_path / "kaggle" / "input" / "datasets" / "alice" / "tts-suite-code"
    inputs.mkdir(parents=True)
    (inputs / SUITE_ARCHIVE).write_bytes((folder / SUITE_ARCHIVE).read_bytes())
    code = nb.cells[0].source + "\nimport nbhelpers, kaggle_kernels; print(nbhelpers.__file__)"
    env = {"PATH": "/usr/bin:/bin", "TTS_KAGGLE_INPUT": str(tmp_path / "kaggle" / "input"),
           "TTS_SUITE_DIR": str(tmp_path / "suite")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "suite" / "nbhelpers") in done.stdout


def test_config_errors_name_the_problem(project: Path, tmp_path: Path, monkeypatch):
    cfg = load_config(project, owner="alice")
    with pytest.raises(ConfigError, match="no kernel 'nope'"):
        cfg.kernel("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text(project.read_text().replace('test_slug_prefix = "tts-suite-test"', 'test_slug_prefix = "tts-suite"'))
    with pytest.raises(ConfigError, match="test_slug_prefix must differ"):
        load_config(bad, owner="alice")
    with pytest.raises(ConfigError, match="looks like a credential"):
        cfg.kernel("01_data_prep", {"hf_token": "hf_x"})
    no_repo = tmp_path / "no_repo.toml"
    no_repo.write_text(project.read_text().replace('install = "dataset"', 'install = "internet"')
                       .replace('repo_url = "https://example.invalid/tts-suite.git"', 'repo_url = ""'))
    with pytest.raises(ConfigError, match="repo_url is empty; set it to your fork"):
        load_config(no_repo, owner="alice")
    monkeypatch.setenv("KAGGLE_KEY", "abc123secret")
    with pytest.raises(ConfigError, match="'note' looks like a credential"):
        cfg.kernel("01_data_prep", {"note": "abc123secret"})
    titled = tmp_path / "titled.toml"
    titled.write_text(project.read_text().replace('enable_gpu = false', 'enable_gpu = false\ntitle = "Data prep!"'))
    with pytest.raises(ConfigError, match="does not turn into the slug 'tts-suite-01-data-prep'"):
        load_config(titled, owner="alice").kernel("01_data_prep")
    ok = titled.read_text().replace('"Data prep!"', '"TTS Suite: 01 Data Prep"')
    titled.write_text(ok)
    assert load_config(titled, owner="alice").kernel("01_data_prep").title == "TTS Suite: 01 Data Prep"
    missing = tmp_path / "missing.toml"
    missing.write_text(project.read_text().replace("02_parler_finetune.ipynb", "02_missing.ipynb"))
    cfg = load_config(missing, owner="alice")
    with pytest.raises(FileNotFoundError, match="02_missing.ipynb does not exist"):
        build_kernel(cfg.kernel("02_parler_finetune"), cfg, tmp_path / "k")


def test_packaged_suite_has_code_and_no_credentials(project: Path, tmp_path: Path):
    root = tmp_path / "repo"
    (root / "nbhelpers" / "__pycache__").mkdir(parents=True)
    (root / "kaggle_kernels").mkdir()
    (root / "nbhelpers" / "__init__.py").write_text("")
    (root / "nbhelpers" / "__pycache__" / "x.pyc").write_bytes(b"0")
    (root / "nbhelpers" / "kaggle.json").write_text('{"username": "u", "key": "LEAK"}')
    (root / "kaggle_kernels" / ".env").write_text("KAGGLE_KEY=LEAK")
    (root / "kaggle_kernels" / "__main__.py").write_text("")
    (root / "requirements.txt").write_text("torch==2.8.0\n")
    cfg = load_config(project, owner="alice")
    folder = package_suite(cfg, tmp_path / "datasets", root=root)
    names = zipfile.ZipFile(folder / SUITE_ARCHIVE).namelist()
    assert sorted(names) == ["kaggle_kernels/__main__.py", "nbhelpers/__init__.py", "requirements.txt"]
    meta = json.loads((folder / "dataset-metadata.json").read_text())
    assert meta["id"] == "alice/tts-suite-code" and 6 <= len(meta["title"]) <= 50
    again = package_suite(cfg, tmp_path / "datasets2", root=root)
    assert (again / SUITE_ARCHIVE).read_bytes() == (folder / SUITE_ARCHIVE).read_bytes()  # reproducible


def test_project_notebook_builds_with_default_config(tmp_path: Path):
    """The suite's own 00_environment notebook through the shipped kernels.toml."""
    cfg = load_config(owner="alice")
    spec = cfg.kernel("00_environment")
    folder = build_kernel(spec, cfg, tmp_path)
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/tts-suite-00-environment" and meta["machine_shape"] == "NvidiaTeslaT4"
    nb = nbformat.read(folder / meta["code_file"], as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[0] == ["kaggle-install"] and tags.count(["injected-parameters"]) == 1
    injected = tags.index(["injected-parameters"])
    assert tags[injected - 1] == ["parameters"]
    assert 'profile = "kaggle-t4"' in nb.cells[injected].source
    assert 'workspace = "/kaggle/working"' in nb.cells[injected].source
    assert any("install_stage(" in c.source for c in nb.cells[1:])  # the notebook's own install cell


def test_output_file_names_cannot_escape_the_download_folder(tmp_path: Path):
    from kaggle_kernels.client import KaggleClient, KaggleError

    assert KaggleClient._safe_target(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"
    for bad in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(KaggleError, match="outside the download folder"):
            KaggleClient._safe_target(tmp_path, bad)


def test_kaggle_client_is_imported_lazily(tmp_path: Path):
    """`import kaggle` authenticates (and may print help or create ~/.kaggle): the tool must not do it early."""
    code = ("import sys, kaggle_kernels.__main__, kaggle_kernels.chain, kaggle_kernels.client; "
            "bad = [m for m in sys.modules if m == 'kaggle' or m.startswith(('kaggle.', 'kagglesdk'))]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(PROJECT)})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".kaggle").exists()
