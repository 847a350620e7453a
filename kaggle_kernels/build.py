"""Kernel folders (notebook with baked parameters + kernel-metadata.json) and the packaged suite (a folder
ready to upload as the code dataset the kernels install from). Nothing here talks to Kaggle."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from .config import PROJECT_ROOT, KernelSpec, SuiteConfig

KAGGLE_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
SUITE_ARCHIVE = "tts_suite.zip"
MANIFEST = "tts_suite_manifest.json"
# what the packaged suite holds (relative to the project root) and what it never holds
PACKAGE_PATHS = ("nbhelpers", "kaggle_kernels", "requirements.txt", "requirements-parler.txt", "requirements.in",
                 "requirements-parler.in", "pyproject.toml", "README.md")
EXCLUDED_NAMES = {"__pycache__", ".pytest_cache", "kaggle.json", "access_token", "credentials.json", ".env",
                  ".netrc"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".ipynb_checkpoints")


def bootstrap_source(cfg: SuiteConfig) -> str:
    """Code of the first kernel cell: make the suite importable from the code dataset (or a clone with
    internet), so that the notebook's own install cell (``nbhelpers.bootstrap.install_stage``) finds nbhelpers."""
    s = cfg.suite
    return f'''# Added by kaggle_kernels: put the TTS suite on sys.path (see docs/kaggle.md).
import os, subprocess, sys, zipfile
from pathlib import Path
INSTALL = {s["install"]!r}
REPO_URL = {s["repo_url"]!r}
inputs = Path(os.environ.get("TTS_KAGGLE_INPUT", "/kaggle/input"))
suite = Path(os.environ.get("TTS_SUITE_DIR", "/tmp/tts-suite"))
def near(name):  # both input layouts: /kaggle/input/<slug>/ and /kaggle/input/datasets/<owner>/<slug>/
    return next((p for d in range(1, 5) for p in sorted(inputs.glob("*/" * d + name))), None)
if INSTALL == "dataset":
    found = near("nbhelpers/__init__.py")
    if found:
        suite = found.parents[1]
    else:
        archive = near({SUITE_ARCHIVE!r})
        assert archive, "attach the code dataset ({cfg.code_dataset_ref}) or set install = 'internet'"
        zipfile.ZipFile(archive).extractall(suite)
elif not (suite / "nbhelpers").is_dir():
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(suite)], check=True)
sys.path.insert(0, str(suite))
os.environ["PYTHONPATH"] = str(suite) + os.pathsep + os.environ.get("PYTHONPATH", "")
print("TTS suite from", suite)
'''


def build_notebook(spec: KernelSpec, cfg: SuiteConfig, dest: Path) -> Path:
    """Bake ``spec.parameters`` into the notebook with papermill (prepare only), switch the kernelspec to
    Kaggle's ``python3``, drop outputs and put the install cell first. Returns the written notebook."""
    import nbformat
    import papermill

    if not spec.notebook.is_file():
        raise FileNotFoundError(f"kernel {spec.key!r}: notebook {spec.notebook} does not exist; write it or fix "
                                f"'notebook' in [kernels.{spec.key}] of {cfg.path}")
    original = nbformat.read(spec.notebook, as_version=4)
    if not any("parameters" in c.metadata.get("tags", []) for c in original.cells):
        raise ValueError(f"{spec.notebook}: no cell tagged 'parameters'; papermill cannot bake parameters into it")
    stack = original.metadata.get("kernelspec", {}).get("name", "tts-main")
    dest.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(spec.notebook), str(dest), parameters=spec.parameters, prepare_only=True,
                               language="python", kernel_name=stack, progress_bar=False,
                               cwd=str(spec.notebook.parent))
    nb = nbformat.read(dest, as_version=4)
    nb.metadata["kernelspec"] = dict(KAGGLE_KERNELSPEC)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    install = nbformat.v4.new_code_cell(bootstrap_source(cfg), metadata={"tags": ["kaggle-install"]})
    nb.cells.insert(0, install)
    nbformat.write(nb, dest)
    return dest


def kernel_metadata(spec: KernelSpec, *, code_file: str, extra_kernel_sources: list[str] = (),
                    extra_dataset_sources: list[str] = ()) -> dict[str, Any]:
    """The kernel-metadata.json the client pushes: private GPU notebook on T4 x2 by default."""
    return {
        "id": spec.ref, "title": spec.title, "code_file": code_file, "language": "python",
        "kernel_type": "notebook", "is_private": spec.is_private, "enable_gpu": spec.enable_gpu,
        "enable_tpu": False, "enable_internet": spec.enable_internet,
        **({"machine_shape": spec.machine_shape} if spec.enable_gpu else {}),
        "dataset_sources": _unique([*spec.dataset_sources, *extra_dataset_sources]),
        "competition_sources": spec.competition_sources,
        "kernel_sources": _unique([*spec.kernel_sources, *extra_kernel_sources]),
        "model_sources": spec.model_sources,
    }


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build_kernel(spec: KernelSpec, cfg: SuiteConfig, out_root: Path, *, extra_kernel_sources: list[str] = (),
                 extra_dataset_sources: list[str] = ()) -> Path:
    """Write ``<out_root>/<slug>/`` with the notebook and its kernel-metadata.json; returns the folder."""
    folder = out_root / spec.slug
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    code_file = f"{spec.slug}.ipynb"
    build_notebook(spec, cfg, folder / code_file)
    meta = kernel_metadata(spec, code_file=code_file, extra_kernel_sources=list(extra_kernel_sources),
                           extra_dataset_sources=list(extra_dataset_sources))
    (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def _package_files(root: Path) -> list[Path]:
    """Files of the suite to package, sorted, without caches or anything that can hold credentials."""
    files = []
    for name in PACKAGE_PATHS:
        path = root / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for f in candidates:
            rel = f.relative_to(root)
            if f.is_file() and not (set(rel.parts) & EXCLUDED_NAMES) and not f.name.endswith(EXCLUDED_SUFFIXES):
                files.append(f)
    return files


def package_suite(cfg: SuiteConfig, out_root: Path, root: Path = PROJECT_ROOT) -> Path:
    """Write the code dataset folder: a reproducible zip of the suite (code and requirement files), a manifest
    with its sha256, and dataset-metadata.json (private dataset). Returns the folder."""
    folder = out_root / cfg.suite["code_dataset"]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = _package_files(root)
    archive = folder / SUITE_ARCHIVE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            info = zipfile.ZipInfo(str(f.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, f.read_bytes())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = {"archive": SUITE_ARCHIVE, "sha256": digest, "files": [str(f.relative_to(root)) for f in files]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    meta = {"id": cfg.code_dataset_ref, "title": "TTS notebook suite code", "licenses": [{"name": "apache-2.0"}],
            "subtitle": "nbhelpers + kaggle_kernels for the TTS notebooks",
            "description": "The TTS notebook suite's Python code and pinned requirements; the suite's Kaggle "
                           "kernels install from it (packaged by kaggle_kernels)."}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def output_dataset_folder(spec: KernelSpec, output_dir: Path, out_root: Path, version: int) -> Path:
    """A checkpoint dataset folder holding a finished session's output, for kernels that cannot attach their
    own previous version: ``<slug>-ckpt`` with the output under ``workspace/`` (the client uploads it as
    workspace.zip; whether Kaggle unpacks it at the top or into ``workspace/``, find_artifact finds it)."""
    slug = f"{spec.slug[:45]}-ckpt"
    folder = out_root / slug
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(output_dir, folder / "workspace", ignore=shutil.ignore_patterns(f"{spec.slug}.log", "*.part"))
    meta = {"id": f"{spec.owner}/{slug}", "title": slug.replace("-", " ")[:50], "licenses": [{"name": "apache-2.0"}],
            "description": f"Output of {spec.ref} version {version}, attached to the next session to resume."}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder
