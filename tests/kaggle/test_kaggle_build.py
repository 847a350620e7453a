"""Kernel folders, config checks and the packaged suite: local only, the kaggle client is never imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from kaggle_kernels.build import MANIFEST, PACKAGE_PATHS, SUITE_ARCHIVE, build_kernel, package_suite
from kaggle_kernels.config import PROJECT_ROOT as PROJECT
from kaggle_kernels.config import ConfigError, load_config
from nbhelpers import nb as nbcell
from nbhelpers import stacks


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
    assert nb.metadata["kernelspec"] == nbcell.KERNELSPEC
    # nothing is inserted: the notebook's own set-up cell, unchanged, is still its first code cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata["tags"] == ["setup"] and code[0].source == nbcell.setup_cell_source(("parler",))
    assert not any("kaggle-install" in c.metadata.get("tags", []) for c in nb.cells)
    assert not any("bootstrap" in c.source or "install_stage" in c.source for c in nb.cells)
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


def _find_code(cell: str, inputs: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the set-up cell's ``find_suite_code()`` part (everything before ``sys.path.insert``) in a fresh Python
    as on Kaggle: inputs under ``inputs``, an empty HOME, cwd outside any checkout, and a ``git`` that fails (no
    test may clone); then import the code it found and report where the stacks' lock files are."""
    find = cell.split("\nsys.path.insert", 1)[0]
    assert "def find_suite_code" in find and "from nbhelpers" not in find
    probe = find + """
import json
root = find_suite_code()
sys.path.insert(0, str(root))
from nbhelpers import nb, stacks
print(json.dumps({"root": str(root), "nb": nb.__file__, "stacks": stacks.__file__,
                  "locks": {s: [str(stacks.lock_path(s)), stacks.lock_sha256(s)] for s in stacks.LOCK_FILES}}))
"""
    bin_dir, home, elsewhere = tmp_path / "bin", tmp_path / "home", tmp_path / "elsewhere"
    for d in (bin_dir, home, elsewhere):
        d.mkdir(exist_ok=True)
    (bin_dir / "git").write_text("#!/bin/sh\necho 'fatal: no network in this test' >&2\nexit 128\n")
    (bin_dir / "git").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "TTS_KAGGLE_INPUT": str(inputs)}
    return subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60, env=env,
                          cwd=str(elsewhere))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    """The code dataset folder packaged from this checkout with the shipped config."""
    return package_suite(load_config(owner="alice"), tmp_path_factory.mktemp("datasets"))


@pytest.mark.parametrize("layout", ["tts-suite-code", "datasets/alice/tts-suite-code"])
@pytest.mark.parametrize("form", ["zip", "unpacked", "unpacked-in-folder"])
def test_setup_cell_finds_the_packaged_code(packaged: Path, tmp_path: Path, layout: str, form: str):
    """Both mount layouts (/kaggle/input/<slug>/, /kaggle/input/datasets/<owner>/<slug>/); the dataset as
    uploaded (tts_suite.zip) or unpacked by Kaggle (at the dataset root or in a folder named after the zip):
    the rendered set-up cell finds nbhelpers, and the stacks find all three lock files beside it."""
    inputs = tmp_path / "input"
    mount = inputs / layout
    shutil.copytree(packaged, mount)
    if form != "zip":
        target = mount if form == "unpacked" else mount / "tts_suite"
        with zipfile.ZipFile(mount / SUITE_ARCHIVE) as zf:
            zf.extractall(target)
        (mount / SUITE_ARCHIVE).unlink()
    (inputs / "some-other-dataset" / "data").mkdir(parents=True)  # other inputs do not confuse the search
    cell = nbcell.setup_cell_source(nbcell.NOTEBOOK_STACKS["02_parler_finetune"])
    done = _find_code(cell, inputs, tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    root = Path(found["root"])
    expected = {"zip": tmp_path / "home" / "tts-suite", "unpacked": mount, "unpacked-in-folder": mount / "tts_suite"}
    assert root == expected[form].resolve()
    assert Path(found["nb"]) == root / "nbhelpers" / "nb.py" and Path(found["stacks"]) == root / "nbhelpers" / "stacks.py"
    assert set(found["locks"]) == set(stacks.LOCK_FILES) == {"main", "parler", "kernel"}
    for name, (path, sha) in found["locks"].items():
        assert Path(path) == root / stacks.LOCK_FILES[name]
        assert sha == stacks.lock_sha256(name)  # the kernel builds the very venvs CI builds from this checkout


def test_setup_cell_without_code_says_what_to_attach(tmp_path: Path):
    """The negative control: nothing attached and no network; the cell fails and says what to do."""
    (tmp_path / "input" / "some-other-dataset").mkdir(parents=True)
    done = _find_code(nbcell.setup_cell_source(("main",)), tmp_path / "input", tmp_path)
    assert done.returncode != 0
    assert "no network in this test" in done.stderr and "Attach the tts-suite-code dataset" in done.stderr


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
    old_repo = tmp_path / "old_repo.toml"
    old_repo.write_text(project.read_text().replace('install = "dataset"', 'install = "dataset"\nrepo_url = "x"'))
    with pytest.raises(ConfigError, match=r"repo_url is no longer read.*set\s+once, in nbhelpers/nb.py"):
        load_config(old_repo, owner="alice")
    offline = tmp_path / "offline.toml"
    offline.write_text(project.read_text().replace("enable_gpu = false", "enable_gpu = false\nenable_internet = false"))
    with pytest.raises(ConfigError, match="'01_data_prep' has enable_internet = false.*builds its locked stacks "
                                          "with uv from PyPI"):
        load_config(offline, owner="alice")  # the whole file is checked when it is read
    internet = tmp_path / "internet.toml"
    internet.write_text(project.read_text().replace('install = "dataset"', 'install = "internet"'))
    cfg_internet = load_config(internet, owner="alice")
    assert cfg_internet.repo_url == nbcell.REPO_URL and cfg.repo_url is None
    assert cfg_internet.kernel("02_parler_finetune").dataset_sources == []  # nothing attached: the cell clones
    monkeypatch.setattr("kaggle_kernels.config.REPO_URL", "https://github.com/.git")
    with pytest.raises(ConfigError, match="clones nbhelpers.nb.REPO_URL.*set REPO in nbhelpers/nb.py"):
        load_config(internet, owner="alice")
    load_config(project, owner="alice")  # install = "dataset" does not need the URL
    monkeypatch.setenv("KAGGLE_KEY", "abc123secret")
    with pytest.raises(ConfigError, match="'note' looks like a credential"):
        cfg.kernel("01_data_prep", {"note": "abc123secret"})
    titled = tmp_path / "titled.toml"
    titled.write_text(project.read_text().replace('enable_gpu = false', 'enable_gpu = false\ntitle = "Data prep!"'))
    with pytest.raises(ConfigError, match="does not turn into the slug 'tts-suite-01-data-prep'"):
        load_config(titled, owner="alice")
    ok = titled.read_text().replace('"Data prep!"', '"TTS Suite: 01 Data Prep"')
    titled.write_text(ok)
    assert load_config(titled, owner="alice").kernel("01_data_prep").title == "TTS Suite: 01 Data Prep"
    stale = tmp_path / "stale" / "01_data_prep.ipynb"
    stale.parent.mkdir()
    nb = nbformat.read(cfg.kernel("01_data_prep").notebook, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace(nbcell.REPO_URL, "https://example.invalid/old.git")
    nbformat.write(nb, stale)
    restaled = tmp_path / "stale.toml"
    restaled.write_text(project.read_text().replace(str(cfg.kernel("01_data_prep").notebook), str(stale)))
    scfg = load_config(restaled, owner="alice")
    with pytest.raises(ValueError, match="set-up cell differs from the one nbhelpers/nb.py renders"):
        build_kernel(scfg.kernel("01_data_prep"), scfg, tmp_path / "k")
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, stale)
    with pytest.raises(ValueError, match="first code cell is not tagged 'setup'.*python -m nbhelpers.nb render"):
        build_kernel(scfg.kernel("01_data_prep"), scfg, tmp_path / "k")
    missing = tmp_path / "missing.toml"
    missing.write_text(project.read_text().replace("02_parler_finetune.ipynb", "02_missing.ipynb"))
    cfg = load_config(missing, owner="alice")
    with pytest.raises(FileNotFoundError, match="02_missing.ipynb does not exist"):
        build_kernel(cfg.kernel("02_parler_finetune"), cfg, tmp_path / "k")


def test_packaged_suite_has_code_and_no_credentials(project: Path, tmp_path: Path):
    root = tmp_path / "repo"
    (root / "nbhelpers" / "__pycache__").mkdir(parents=True)
    (root / "kaggle_kernels").mkdir()
    for name in ("__init__.py", "nb.py", "stacks.py"):
        (root / "nbhelpers" / name).write_text("")
    (root / "nbhelpers" / "__pycache__" / "x.pyc").write_bytes(b"0")
    (root / "nbhelpers" / "kaggle.json").write_text('{"username": "u", "key": "LEAK"}')
    (root / "nbhelpers" / ".env").write_text("KAGGLE_KEY=LEAK")
    (root / "kaggle_kernels" / "__main__.py").write_text("")  # the tool runs on your machine: not packaged
    (root / "notebooks").mkdir()
    (root / "notebooks" / "00_environment.ipynb").write_text("{}")
    cfg = load_config(project, owner="alice")
    locks = ("requirements.txt", "requirements-parler.txt", "requirements-kernel.txt")
    for i, name in enumerate(locks):
        with pytest.raises(FileNotFoundError, match=rf"{name} \(missing\); the kernels. set-up cell needs"):
            package_suite(cfg, tmp_path / "datasets", root=root)
        (root / name).write_text(f"torch==2.8.{i}\n")
    folder = package_suite(cfg, tmp_path / "datasets", root=root)
    names = zipfile.ZipFile(folder / SUITE_ARCHIVE).namelist()
    assert sorted(names) == ["nbhelpers/__init__.py", "nbhelpers/nb.py", "nbhelpers/stacks.py", *sorted(locks)]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["lock_sha256"]) == {"main", "parler", "kernel"} and manifest["files"] == names
    meta = json.loads((folder / "dataset-metadata.json").read_text())
    assert meta["id"] == "alice/tts-suite-code" and 6 <= len(meta["title"]) <= 50
    again = package_suite(cfg, tmp_path / "datasets2", root=root)
    assert (again / SUITE_ARCHIVE).read_bytes() == (folder / SUITE_ARCHIVE).read_bytes()  # reproducible


def test_package_paths_cover_what_the_kernel_needs():
    """Every lock file a stack is built from, and the code the set-up cell looks for, are packaged."""
    assert set(stacks.LOCK_FILES.values()) <= set(PACKAGE_PATHS) and "nbhelpers" in PACKAGE_PATHS
    assert "kaggle_kernels" not in PACKAGE_PATHS
    assert nbcell.NOTEBOOK_DIR.name not in PACKAGE_PATHS


def test_project_notebook_builds_with_default_config(tmp_path: Path):
    """The suite's own 00_environment notebook through the shipped kernels.toml."""
    cfg = load_config(owner="alice")
    assert "repo_url" not in cfg.suite and cfg.suite["enable_internet"] is True
    spec = cfg.kernel("00_environment")
    folder = build_kernel(spec, cfg, tmp_path)
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/tts-suite-00-environment" and meta["machine_shape"] == "NvidiaTeslaT4"
    assert meta["enable_internet"] is True and meta["dataset_sources"] == ["alice/tts-suite-code"]
    nb = nbformat.read(folder / meta["code_file"], as_version=4)
    original = nbformat.read(spec.notebook, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags.count(["injected-parameters"]) == 1 and "kaggle-install" not in sum(tags, [])
    assert len(nb.cells) == len(original.cells) + 1  # only papermill's parameters cell is added
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert setup.metadata["tags"] == ["setup"] and setup.source == nbcell.setup_cell_source(("main", "parler"))
    injected = tags.index(["injected-parameters"])
    assert tags[injected - 1] == ["parameters"]
    assert 'profile = "kaggle-t4"' in nb.cells[injected].source
    assert 'workspace = "/kaggle/working"' in nb.cells[injected].source
    assert not any("install_stage(" in c.source or "nbhelpers.bootstrap" in c.source for c in nb.cells)


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
