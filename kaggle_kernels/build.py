"""Kernel folders (notebook with baked parameters + kernel-metadata.json) and the packaged suite (a folder
ready to upload as the code dataset whose code the notebooks' own set-up cell finds). Nothing here talks to
Kaggle."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from nbhelpers import nb as nbcell
from nbhelpers.stacks import LOCK_FILES

from .config import PROJECT_ROOT, KernelSpec, SuiteConfig
from .scan import refuse_secrets

KAGGLE_KERNELSPEC = dict(nbcell.KERNELSPEC)  # the platforms' plain kernel: the notebooks run on Kaggle's Python
SUITE_ARCHIVE = "tts_suite.zip"  # the name the set-up cell looks for under the input root (nbhelpers/nb.py)
MANIFEST = "tts_suite_manifest.json"
# What the packaged suite holds (relative to the project root): the library the set-up cell puts on sys.path and
# the lock files its stacks are built from (nbhelpers.stacks.LOCK_FILES, found beside nbhelpers/). The
# kaggle_kernels tool itself runs on your machine, not in the kernels.
PACKAGE_PATHS = ("nbhelpers", "requirements.txt", "requirements-parler.txt", "requirements-kernel.txt",
                 "requirements.in", "requirements-parler.in", "requirements-kernel.in", "pyproject.toml", "README.md")
# Without these the set-up cell cannot find the code (nb.py) or build a stack (stacks.py and every lock file).
REQUIRED_FILES = ("nbhelpers/__init__.py", "nbhelpers/nb.py", "nbhelpers/stacks.py", *sorted(LOCK_FILES.values()))
EXCLUDED_NAMES = {"__pycache__", ".pytest_cache", "kaggle.json", "access_token", "credentials.json", ".env",
                  ".netrc"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".ipynb_checkpoints")


def check_setup_cell(notebook: Path, cells: list[Any]) -> None:
    """The notebook's first code cell must be its set-up cell as ``nbhelpers.nb`` renders it today: that cell,
    not the kernel builder, finds the code (attached dataset or clone) and builds the stacks on Kaggle."""
    code = [c for c in cells if c.cell_type == "code"]
    fix = "run `python -m nbhelpers.nb render` and commit the notebook"
    if not code or nbcell.SETUP_TAG not in code[0].metadata.get("tags", []):
        raise ValueError(f"{notebook}: the first code cell is not tagged {nbcell.SETUP_TAG!r}, so the kernel would "
                         f"not find the suite's code on Kaggle; {fix}")
    stacks = nbcell.NOTEBOOK_STACKS.get(notebook.stem)
    if stacks is not None and code[0].source != nbcell.setup_cell_source(stacks):
        raise ValueError(f"{notebook}: its set-up cell differs from the one nbhelpers/nb.py renders (edited by hand, "
                         f"or rendered before nb.py changed); {fix}")


def build_notebook(spec: KernelSpec, cfg: SuiteConfig, dest: Path) -> Path:
    """Bake ``spec.parameters`` into the notebook with papermill (prepare only), set Kaggle's ``python3``
    kernelspec and drop outputs. The notebook's own set-up cell (checked, never changed) gets the code and the
    stacks on Kaggle. Returns the written notebook."""
    import nbformat
    import papermill

    if not spec.notebook.is_file():
        raise FileNotFoundError(f"kernel {spec.key!r}: notebook {spec.notebook} does not exist; write it or fix "
                                f"'notebook' in [kernels.{spec.key}] of {cfg.path}")
    original = nbformat.read(spec.notebook, as_version=4)
    if not any("parameters" in c.metadata.get("tags", []) for c in original.cells):
        raise ValueError(f"{spec.notebook}: no cell tagged 'parameters'; papermill cannot bake parameters into it")
    check_setup_cell(spec.notebook, original.cells)
    refuse_secrets(spec.notebook, f"kernel {spec.ref}")  # cells numbered as in the notebook you edit
    dest.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(spec.notebook), str(dest), parameters=spec.parameters, prepare_only=True,
                               language="python", kernel_name=KAGGLE_KERNELSPEC["name"], progress_bar=False,
                               cwd=str(spec.notebook.parent))
    nb = nbformat.read(dest, as_version=4)
    nb.metadata["kernelspec"] = dict(KAGGLE_KERNELSPEC)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
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
    _refuse_secrets_in(folder, f"kernel {spec.ref}")
    return folder


def _refuse_secrets_in(folder: Path, what: str) -> None:
    """Scan a folder about to be uploaded; on a finding remove it (so it is never pushed by hand) and raise."""
    try:
        refuse_secrets(folder, what)
    except ValueError:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _package_files(root: Path) -> list[Path]:
    """Files of the suite to package, sorted, without caches or anything that can hold credentials; refuses a
    package the kernels' set-up cell could not use."""
    files = []
    for name in PACKAGE_PATHS:
        path = root / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for f in candidates:
            rel = f.relative_to(root)
            if f.is_file() and not (set(rel.parts) & EXCLUDED_NAMES) and not f.name.endswith(EXCLUDED_SUFFIXES):
                files.append(f)
    packaged = {f.relative_to(root).as_posix() for f in files}
    missing = [name for name in REQUIRED_FILES if name not in packaged]
    if missing:
        where = [f"{n} ({'not in PACKAGE_PATHS' if (root / n).is_file() else 'missing'})" for n in missing]
        raise FileNotFoundError(f"cannot package the suite from {root}: {', '.join(where)}; the kernels' set-up cell "
                                "needs nbhelpers/nb.py and stacks.py to find the code and every lock file to build "
                                "its stacks (`make lock` writes the lock files)")
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
    locks = {stack: hashlib.sha256((root / name).read_bytes()).hexdigest() for stack, name in LOCK_FILES.items()}
    manifest = {"archive": SUITE_ARCHIVE, "sha256": digest, "lock_sha256": locks,
                "files": [str(f.relative_to(root)) for f in files]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    meta = {"id": cfg.code_dataset_ref, "title": "TTS notebook suite code", "licenses": [{"name": "apache-2.0"}],
            "subtitle": "nbhelpers and the locked requirements of the TTS notebooks",
            "description": "The TTS notebook suite's Python code (nbhelpers) and its lock files. Each notebook's "
                           "set-up cell finds it under /kaggle/input (as tts_suite.zip or unpacked) and builds "
                           "the locked stacks beside the kernel (packaged by kaggle_kernels)."}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    _refuse_secrets_in(folder, f"the code dataset {cfg.code_dataset_ref}")
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
    _refuse_secrets_in(folder, f"the checkpoint dataset {meta['id']}")
    return folder
