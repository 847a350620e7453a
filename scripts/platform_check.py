"""Platform check: the smoke chain on replicas of today's Kaggle and Colab notebook kernels, and the locks
against pip's own rules for the locked Python.

    .venv/bin/python scripts/platform_check.py [--platform kaggle|colab|all] [--only 00,01] [--keep]
    python3.11 scripts/platform_check.py locks [--python 3.11] [LOCK ...]

``run`` (the default; ``make platform-check``): for each platform, build (or reuse) a replica kernel venv from the
platform's published package lists in ``../shared/platforms/`` on the platform's Python minor version (pyenv),
register it as a Jupyter kernel of its own (Kaggle's argv loads ``%matplotlib inline`` at start, so numpy is
imported before any cell runs, as on Kaggle) whose environment carries the platform's variables, run the smoke
chain on it in suite order as "Save & Run All" does (papermill, one kernel per notebook, no restart), and fail
unless every notebook completes and the kernel's ``pip freeze`` is unchanged. See docs/platforms.md.

``locks``: every ``name==version`` pin of the lock files must be installable by pip on the locked Python:
pip's own PackageFinder (the code ``pip install`` uses to pick a file) must find a file of that exact version
whose Requires-Python admits the Python (upper bounds included, which uv ignores when it resolves) and whose
wheel tags fit it (or an sdist). Reads index pages only (no downloads).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from nbhelpers import stacks  # noqa: E402  (standard library only: runs under any Python)

PLATFORMS_DIR = Path(os.environ.get("TTS_PLATFORMS_DIR") or PROJECT_ROOT.parent / "shared" / "platforms")
DEFAULT_INDEX = "https://pypi.org/simple"
REPLICA_FORMAT = 1  # bump when the way replicas are built changes: every cached replica is rebuilt
MARKER = ".tts-replica.json"

# What a notebook kernel touches: the Jupyter kernel and its dependencies, what a kernel imports at start-up or
# for display (numpy via matplotlib-inline, pandas), pip (the set-up cell installs uv with `pip --target`), and
# the packages the old install cells broke (protobuf, setuptools, packaging). Everything else of the platform's
# freeze (torch, tensorflow, jax, ~700 packages, tens of GB) is left out: a notebook cell must never import it,
# and a replica without it makes such an import fail loudly instead of passing by luck.
KERNEL_PACKAGES = ("ipykernel", "ipython", "jupyter_client", "jupyter_core", "traitlets", "tornado", "pyzmq",
                   "debugpy", "comm", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets", "matplotlib",
                   "matplotlib-inline", "numpy", "pandas", "protobuf", "setuptools", "packaging", "pip", "wheel",
                   "psutil", "requests", "tqdm", "nbformat", "nbconvert")


@dataclass
class Platform:
    name: str
    python: str  # minor version of the platform's kernel
    real_python: str  # the platform's exact version (os-info.txt)
    freeze: str  # the platform's published `pip freeze`
    exclude_newer: str  # packages the platform installed unpinned: newest before this date
    env: dict[str, str]
    kernel_args: tuple[str, ...] = ()
    # The platform's own installs on top of the freeze (Kaggle: kaggle_requirements.txt + forced reinstalls):
    # these specifiers replace the freeze's versions of the same names.
    pins: dict[str, str] = field(default_factory=dict)
    # Freeze versions the pins above force to change (found by resolving: nbconvert 6.4.5 needs nbclient <0.6
    # and mistune <2, ipywidgets 8.1.5 needs widgetsnbextension 4).
    relax: tuple[str, ...] = ()
    # Whether to drop resolved packages the freeze lacks (Colab ships IPython 7.34 without jedi).
    freeze_only: bool = False

    @property
    def kernel_name(self) -> str:
        return f"replica-{self.name}"


def _kaggle_pins() -> dict[str, str]:
    """Kaggle's requirements that a kernel touches, as Kaggle's file states them, plus the two packages Kaggle
    force-reinstalls afterwards (protobuf 5.29.5, setuptools >=70,<82: 82 removed pkg_resources)."""
    relevant = {"ipywidgets", "nbconvert", "papermill", "comm", "jedi", "ipympl", "matplotlib"}
    pins = {}
    path = PLATFORMS_DIR / "kaggle-2026-08-12.kaggle_requirements.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0]
        if line and _norm(name) in {_norm(r) for r in relevant}:
            pins[_norm(name)] = line
    pins.update({"protobuf": "protobuf==5.29.5", "setuptools": "setuptools>=70,<82"})
    return pins


def platforms() -> dict[str, Platform]:
    return {
        "kaggle": Platform(
            "kaggle", "3.12", _os_python("colab-gpu-2026-05-08"), "colab-gpu-2026-05-08.pip-freeze.txt", "2026-08-13",
            env={"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_URL_BASE": "https://www.kaggle.com",
                 "KAGGLE_DATA_PROXY_URL": "http://127.0.0.1:9", "KAGGLE_DATA_PROXY_PROJECT": "kaggle-161607",
                 "KAGGLE_KERNEL_INTEGRATIONS": "", "KAGGLE_CONTAINER_NAME": "kaggle_replica",
                 "KAGGLE_DOCKER_IMAGE": "gcr.io/kaggle-gpu-images/python (replica)"},
            kernel_args=("--IPKernelApp.matplotlib=inline",), pins=_kaggle_pins(),
            relax=("widgetsnbextension", "nbclient", "mistune")),
        "colab": Platform(
            "colab", "3.13", _os_python("colab-gpu-2026-08-19"), "colab-gpu-2026-08-19.pip-freeze.txt", "2026-08-20",
            env={"COLAB_RELEASE_TAG": "replica-2026-08-19", "COLAB_GPU": "",
                 "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
            freeze_only=True),
    }


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _os_python(stem: str) -> str:
    path = PLATFORMS_DIR / f"{stem}.os-info.txt"
    if not path.is_file():
        return "?"
    found = re.search(r"Python (\d+\.\d+\.\d+)", path.read_text(encoding="utf-8"))
    return found.group(1) if found else "?"


def read_pins(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a freeze or lock (``name==version`` lines; URL installs skipped)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s]+)$", line)
        if found:
            pins[_norm(found.group(1))] = found.group(3)
    return pins


# ---------------------------------------------------------------------------------------------- replicas
def platform_python(version: str) -> Path:
    """A CPython ``version`` (minor) from pyenv (or $TTS_PYTHON_<3XX>); exits loudly when there is none."""
    override = os.environ.get(f"TTS_PYTHON_{version.replace('.', '')}")
    if override:
        return Path(override)
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"), key=lambda p: [int(x) for x in
                                                                                  p.parents[1].name.split(".")
                                                                                  if x.isdigit()])
    on_path = shutil.which(f"python{version}")
    if found:
        return found[-1]
    if on_path:
        return Path(on_path)
    raise SystemExit(f"\n*** PLATFORM CHECK CANNOT RUN: no Python {version} here (looked in {root} and on PATH). ***\n"
                     f"The replica kernel needs the platform's minor version. Install it (`pyenv install {version}`) or "
                     f"set TTS_PYTHON_{version.replace('.', '')} to a Python {version} interpreter.")


def _uv_env() -> dict[str, str]:
    return {**os.environ, "UV_CACHE_DIR": str(stacks.cache_root() / "uv"), "UV_LINK_MODE": "hardlink",
            "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}


def _inputs(plat: Platform, python: Path) -> tuple[str, str]:
    """The replica's requirements (kernel packages present in the platform, the platform's own pins) and its
    constraints (the freeze's exact versions, minus what the platform's own installs changed)."""
    freeze_path = PLATFORMS_DIR / plat.freeze
    if not freeze_path.is_file():
        raise SystemExit(f"the platform's package list {freeze_path} is missing (set TTS_PLATFORMS_DIR)")
    freeze = read_pins(freeze_path)
    wanted = [p for p in KERNEL_PACKAGES if _norm(p) in freeze and _norm(p) not in plat.pins]
    requirements = "\n".join(wanted + sorted(plat.pins.values())) + "\n"
    dropped = {_norm(n) for n in plat.pins} | {_norm(n) for n in plat.relax}
    constraints = "\n".join(f"{n}=={v}" for n, v in sorted(freeze.items()) if n not in dropped) + "\n"
    return requirements, constraints


def replica_dir(plat: Platform, python: Path) -> tuple[Path, str]:
    requirements, constraints = _inputs(plat, python)
    key = hashlib.sha256("\n".join([str(REPLICA_FORMAT), stacks.UV_VERSION, str(python), _python_version(python),
                                    plat.exclude_newer, requirements, constraints, str(plat.freeze_only)]).encode())
    return stacks.cache_root() / "replicas" / f"{plat.name}-{key.hexdigest()[:16]}", key.hexdigest()


def _python_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def freeze(python: Path) -> dict[str, str]:
    """The replica's installed packages, as ``pip freeze`` (uv's, which needs no pip inside) lists them."""
    uv = stacks.ensure_uv(log=lambda line: print(f"  {line}"))
    out = subprocess.run([str(uv), "pip", "freeze", "--python", str(python)], capture_output=True, text=True,
                         env=_uv_env(), check=True).stdout
    return {_norm(n): v for n, v in (line.split("==", 1) for line in out.splitlines() if "==" in line)}


def ensure_replica(plat: Platform, log=print) -> tuple[Path, dict]:
    """The replica venv of ``plat`` (built aside and moved into place when complete; rebuilt when its packages
    no longer match what it was built with, e.g. after a run that changed them)."""
    python = platform_python(plat.python)
    folder, key = replica_dir(plat, python)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{plat.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        why = "not built yet"
        if (folder / MARKER).is_file():
            info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
            try:
                now = freeze(folder / "bin" / "python")
            except (OSError, subprocess.SubprocessError):
                now = None
            if info.get("key") == key and now == info.get("freeze"):
                log(f"{plat.name}: reusing replica {folder}")
                return folder, info
            why = "its packages differ from the ones it was built with" if now else "it does not run"
        log(f"{plat.name}: building replica kernel at {folder} ({why})")
        return folder, _build_replica(plat, python, folder, key, log)


def _build_replica(plat: Platform, python: Path, folder: Path, key: str, log) -> dict:
    uv, start = stacks.ensure_uv(log=lambda line: log(f"  {line}")), time.monotonic()
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    requirements, constraints = _inputs(plat, python)
    env, index = _uv_env(), os.environ.get("UV_INDEX_URL", DEFAULT_INDEX)
    try:
        # a relocatable venv built aside (scripts find their Python relatively), moved into place when complete
        done = subprocess.run([str(uv), "venv", "-q", "--relocatable", "--python", str(python), str(tmp)], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{plat.name}: creating the replica venv failed:\n{done.stderr[-3000:]}")
        (tmp / "replica-requirements.in").write_text(requirements, encoding="utf-8")
        (tmp / "replica-constraints.txt").write_text(constraints, encoding="utf-8")
        lock = tmp / "replica-lock.txt"
        done = subprocess.run([str(uv), "pip", "compile", "-q", "--no-header", "--python", str(tmp / "bin" / "python"),
                               "--exclude-newer", plat.exclude_newer, "--index-url", index,
                               str(tmp / "replica-requirements.in"), "-c", str(tmp / "replica-constraints.txt"),
                               "-o", str(lock)], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{plat.name}: resolving the replica's packages failed:\n{done.stderr[-3000:]}")
        if plat.freeze_only:  # the platform ships without some declared dependencies: so does its replica
            known = read_pins(PLATFORMS_DIR / plat.freeze)
            lines = [line for line in lock.read_text(encoding="utf-8").splitlines()
                     if not re.match(r"^[A-Za-z0-9]", line) or _norm(line.split("==")[0]) in known]
            lock.write_text("\n".join(lines) + "\n", encoding="utf-8")
        done = subprocess.run([str(uv), "pip", "sync", "-q", "--python", str(tmp / "bin" / "python"),
                               "--index-url", index, str(lock)], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{plat.name}: installing the replica's packages failed:\n{done.stderr[-3000:]}")
        info = {"platform": plat.name, "key": key, "python": _python_version(tmp / "bin" / "python"),
                "real_python": plat.real_python, "freeze_source": plat.freeze,
                "freeze": freeze(tmp / "bin" / "python"), "seconds": round(time.monotonic() - start, 1),
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / (MARKER + ".tmp")).write_text(json.dumps(info, indent=1), encoding="utf-8")
        (tmp / (MARKER + ".tmp")).rename(tmp / MARKER)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        log(f"{plat.name}: replica built in {info['seconds']:.0f} s ({len(info['freeze'])} packages, "
            f"Python {info['python']})")
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_kernelspec(plat: Platform, replica: Path, jupyter_dir: Path, inputs: Path | None) -> None:
    """Register the replica as kernel ``replica-<platform>`` in a JUPYTER_PATH folder of its own. Its argv is
    the platform's (Kaggle: ``%matplotlib inline`` at start, which imports numpy) and its env carries the
    platform's variables; PYTHONPATH is emptied, so the set-up cell must find the code itself, as on the platform."""
    env = {**plat.env, "PYTHONPATH": ""}
    if inputs is not None:
        env["TTS_KAGGLE_INPUT"] = str(inputs)
    spec = {"argv": [str(replica / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     *plat.kernel_args],
            "display_name": f"Python 3 ({plat.name} replica)", "language": "python", "env": env}
    folder = jupyter_dir / "kernels" / plat.kernel_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def fake_kaggle_input(out: Path) -> Path:
    """An empty, read-only stand-in for /kaggle/input (the run writes nothing there; a write fails as on Kaggle)."""
    inputs = out / "kaggle-input"
    if inputs.exists():
        inputs.chmod(stat.S_IRWXU)
    inputs.mkdir(parents=True, exist_ok=True)
    inputs.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return inputs


PROBE = """import json, os, platform, sys
print("PROBE" + json.dumps({"python": platform.python_version(), "numpy_at_start": "numpy" in sys.modules,
    "detected": {k: os.environ.get(k) for k in ("KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG")},
    "executable": sys.executable}))"""


def probe_kernel(plat: Platform, jupyter_dir: Path) -> dict:
    """Start the replica kernel once and ask it what it is: its Python and whether numpy was imported at start."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    ksm = KernelSpecManager()
    ksm.kernel_dirs = [str(jupyter_dir / "kernels")]
    km = KernelManager(kernel_name=plat.kernel_name, kernel_spec_manager=ksm)
    km.start_kernel()
    kc = km.client()
    lines: list[str] = []
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        kc.execute_interactive(PROBE, timeout=60, output_hook=lambda msg: lines.append(
            msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    found = [line for line in "".join(lines).splitlines() if line.startswith("PROBE")]
    if not found:
        raise SystemExit(f"{plat.name}: the replica kernel did not answer the probe: {''.join(lines)[-2000:]}")
    return json.loads(found[-1][len("PROBE"):])


@dataclass
class Outcome:
    platform: str
    python: str = "?"
    real_python: str = "?"
    notebooks_ok: int = 0
    notebooks: int = 0
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.changed and self.notebooks_ok == self.notebooks > 0


def diff_freeze(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"+ {n}=={after[n]}" for n in sorted(set(after) - set(before))]
    changes += [f"- {n}=={before[n]}" for n in sorted(set(before) - set(after))]
    changes += [f"~ {n} {before[n]} -> {after[n]}" for n in sorted(set(before) & set(after)) if before[n] != after[n]]
    return changes


def check_platform(plat: Platform, only: str, keep: bool, runs: Path, notebooks: Path | None = None) -> Outcome:
    start = time.monotonic()
    outcome = Outcome(plat.name, real_python=plat.real_python)
    replica, info = ensure_replica(plat)
    outcome.python = info["python"]
    out = runs / f"platform-{plat.name}"
    if out.exists() and not keep:
        for path in out.rglob("*"):  # the read-only fake input must become writable again to be removed
            if path.is_dir():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    jupyter_dir = out / "jupyter"
    inputs = fake_kaggle_input(out) if plat.name == "kaggle" else None
    write_kernelspec(plat, replica, jupyter_dir, inputs)
    python = replica / "bin" / "python"
    before = freeze(python)
    probe = probe_kernel(plat, jupyter_dir)
    print(f"{plat.name}: kernel {plat.kernel_name} runs Python {probe['python']} (the platform: {plat.real_python}); "
          f"numpy imported at start: {probe['numpy_at_start']}", flush=True)
    if plat.kernel_args and not probe["numpy_at_start"]:
        outcome.problems.append("the replica kernel did not import numpy at start as the platform's does")
    cmd = [sys.executable, "-m", "nbhelpers.suite", "run", "--profile", "smoke", "--kernel", plat.kernel_name,
           "--out", str(out)] + (["--only", only] if only else []) + (["--notebooks", str(notebooks)] if notebooks else [])
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join(filter(None, [str(jupyter_dir),
                                                                        os.environ.get("JUPYTER_PATH")])),
           "PYTHONPATH": str(PROJECT_ROOT)}
    print(f"{plat.name}: {' '.join(cmd[1:])}", flush=True)
    rc = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT).returncode
    summary = out / "summary.json"
    results = json.loads(summary.read_text(encoding="utf-8"))["results"] if summary.is_file() else []
    outcome.notebooks = len(results)
    outcome.notebooks_ok = sum(r["status"] == "ok" for r in results)
    if rc and outcome.notebooks_ok == outcome.notebooks:
        outcome.problems.append(f"the suite runner exited {rc}")
    outcome.problems += [f"{r['notebook']}: {r['status']} {r.get('error') or ''}".strip()
                         for r in results if r["status"] != "ok"]
    outcome.changed = diff_freeze(before, freeze(python))
    if inputs is not None and any(inputs.iterdir()):  # root ignores the read-only mode: look for writes instead
        outcome.problems.append(f"the run wrote into the read-only Kaggle input root {inputs}: "
                                f"{', '.join(p.name for p in inputs.iterdir())}")
    outcome.seconds = round(time.monotonic() - start, 1)
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    lines = ["| platform | python (replica / platform) | notebooks ok | packages changed | wall s | verdict |",
             "|---|---|---|---:|---:|---|"]
    for o in outcomes:
        lines.append(f"| {o.platform} | {o.python} / {o.real_python} | {o.notebooks_ok}/{o.notebooks} | "
                     f"{len(o.changed)} | {o.seconds:.0f} | {'ok' if o.ok else 'FAILED'} |")
    for o in outcomes:
        if o.problems or o.changed:
            lines.append("")
        lines += [f"{o.platform}: {p}" for p in o.problems]
        if o.changed:
            lines.append(f"{o.platform}: the kernel's packages changed:\n  " + "\n  ".join(o.changed))
    return "\n".join(lines)


def run_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/platform_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="all", choices=["kaggle", "colab", "all"])
    parser.add_argument("--only", default="", help="comma-separated notebook numbers (default: the whole chain)")
    parser.add_argument("--keep", action="store_true", help="keep the previous run's workspace (to rerun one notebook)")
    parser.add_argument("--notebooks", type=Path, help="folder of numbered notebooks (default: the suite's)")
    parser.add_argument("--runs", type=Path, default=PROJECT_ROOT / "runs", help="where the run folders go")
    args = parser.parse_args(argv)
    chosen = list(platforms().values()) if args.platform == "all" else [platforms()[args.platform]]
    for plat in chosen:  # every interpreter first: a missing one fails before any long run
        platform_python(plat.python)
    outcomes = [check_platform(plat, args.only, args.keep, args.runs.resolve(), args.notebooks) for plat in chosen]
    text = summary(outcomes)
    report = args.runs / "platform-check.md"
    tmp = report.with_suffix(".md.tmp")
    tmp.write_text(f"# Platform check ({time.strftime('%Y-%m-%d %H:%M')})\n\n{text}\n", encoding="utf-8")
    tmp.replace(report)
    print(f"\n{text}\n\nreport: {report}")
    return 0 if all(o.ok for o in outcomes) else 1


# ------------------------------------------------------------------------------------------------- locks
def _pip_finder(cmd, python_version: str, index: str):
    """pip's own PackageFinder, configured as ``pip install`` on ``python_version`` (pip's config for certificates,
    proxies and cache honoured; its extra indexes and find-links dropped: only ``index`` counts)."""
    from pip._internal.models.target_python import TargetPython

    options, _ = cmd.parse_args(["--no-deps", "--index-url", index])
    options.extra_index_urls, options.find_links = [], []
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    target = TargetPython() if running == python_version else \
        TargetPython(py_version_info=tuple(int(x) for x in python_version.split(".")))
    session = cmd.get_default_session(options)
    finder = cmd._build_package_finder(options=options, session=session, target_python=target,
                                       ignore_requires_python=False)
    loose = cmd._build_package_finder(options=options, session=session, target_python=target,
                                      ignore_requires_python=True)
    return finder, loose


def check_locks(locks: list[Path], python_version: str, index: str) -> list[str]:
    """One line per pin pip would not install on ``python_version``, saying why."""
    from concurrent.futures import ThreadPoolExecutor

    from pip._internal.commands import create_command
    from pip._vendor.packaging.specifiers import SpecifierSet

    cmd = create_command("download")
    pins: dict[tuple[str, str], list[str]] = {}
    for lock in locks:
        for name, version in read_pins(lock).items():
            pins.setdefault((name, version), []).append(lock.name)

    def check(pin: tuple[str, str]) -> str | None:
        name, version = pin
        spec = SpecifierSet(f"=={version}")
        if finder.find_best_candidate(name, spec).best_candidate is not None:
            return None
        where = ", ".join(pins[pin])
        other = loose.find_best_candidate(name, spec).best_candidate
        if other is not None:
            return (f"{name}=={version} ({where}): Requires-Python {other.link.requires_python!r} excludes Python "
                    f"{python_version}; pip refuses it")
        return f"{name}=={version} ({where}): no file of this version on {index} fits Python {python_version} here"

    with cmd.main_context(), ThreadPoolExecutor(max_workers=8) as pool:
        finder, loose = _pip_finder(cmd, python_version, index)
        return [problem for problem in pool.map(check, sorted(pins)) if problem]


def locks_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/platform_check.py locks",
                                     description="every pin of the locks installable by pip on the locked Python")
    parser.add_argument("locks", nargs="*", type=Path,
                        default=[PROJECT_ROOT / f for f in stacks.LOCK_FILES.values()])
    parser.add_argument("--python", default=stacks.STACK_PYTHON, help="the Python minor version (default: the locks')")
    parser.add_argument("--index-url", default=os.environ.get("UV_INDEX_URL", DEFAULT_INDEX))
    args = parser.parse_args(argv)
    try:
        import pip  # noqa: F401
        has_pip = True
    except ImportError:
        has_pip = False
    if not has_pip:  # e.g. a uv venv: rerun under the base interpreter the stacks are built on
        python = stacks.find_python()
        if python == stacks.STACK_PYTHON or Path(python).resolve() == Path(sys.executable).resolve():
            raise SystemExit(f"no pip in {sys.executable} and no Python {stacks.STACK_PYTHON} with pip found")
        return subprocess.run([python, __file__, "locks", *argv]).returncode
    start = time.monotonic()
    import pip

    problems = check_locks([p.resolve() for p in args.locks], args.python, args.index_url)
    count = len({pin for lock in args.locks for pin in read_pins(lock).items()})
    print(f"pip {pip.__version__} on Python {sys.version.split()[0]}, target Python {args.python}, index "
          f"{args.index_url}: {count} pins in {len(args.locks)} lock(s), {len(problems)} not installable "
          f"({time.monotonic() - start:.1f} s)")
    for problem in problems:
        print(f"  NOT INSTALLABLE: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["locks"]:
        return locks_main(argv[1:])
    return run_main(argv[1:] if argv[:1] == ["run"] else argv)


if __name__ == "__main__":
    sys.exit(main())
