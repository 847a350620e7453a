"""The locked Python stacks, built as virtual environments beside the kernel, never inside it.

One venv per lock file, built by uv from the exact pins on the Python minor version CI uses, kept in
``$TTS_SUITE_CACHE`` (default ``~/.cache/tts-suite``: outside ``/kaggle/working`` and outside Drive), keyed by
the lock's sha256, and reused while its completion marker matches the lock. ``make setup`` and every notebook's
set-up cell call the same :func:`ensure_stack`, so CI builds exactly what Kaggle and Colab build. Standard
library only: this module runs in the platform's kernel.

    python -m nbhelpers.stacks build [main parler kernel] [--link]
    python -m nbhelpers.stacks python main
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILES = {"main": "requirements.txt", "parler": "requirements-parler.txt", "kernel": "requirements-kernel.txt"}
STACK_PYTHON = "3.11"  # the minor version the locks are compiled for (`make lock`) and CI runs
UV_VERSION = "0.13.8"
# Disk a cold build needs (wheels unpacked into uv's cache plus the venv's links), measured here (docs/platforms.md).
COLD_BUILD_GB = {"main": 9.0, "parler": 7.0, "kernel": 0.2}
MARKER = ".tts-stack.json"


class StackError(RuntimeError):
    """A stack could not be built or used; the message says why and what to do."""


@dataclass
class Stack:
    name: str
    dir: Path
    python: Path
    lock_sha256: str
    python_version: str
    built_now: bool
    seconds: float

    def describe(self) -> str:
        how = f"built in {self.seconds:.0f} s" if self.built_now else "reused"
        return f"{self.name} stack: Python {self.python_version}, lock {self.lock_sha256[:12]}, {how} ({self.dir})"


def cache_root() -> Path:
    return Path(os.environ.get("TTS_SUITE_CACHE") or Path.home() / ".cache" / "tts-suite").expanduser()


def lock_path(stack: str) -> Path:
    if stack not in LOCK_FILES:
        raise StackError(f"unknown stack {stack!r}: choose one of {', '.join(LOCK_FILES)}")
    return PROJECT_ROOT / LOCK_FILES[stack]


def lock_sha256(stack: str) -> str:
    return hashlib.sha256(lock_path(stack).read_bytes()).hexdigest()


def stack_dir(stack: str) -> Path:
    """Where ``stack``'s venv lives: one folder per (lock content, Python minor, uv version)."""
    key = hashlib.sha256(f"{lock_sha256(stack)} py{STACK_PYTHON} uv{UV_VERSION}".encode()).hexdigest()[:16]
    return cache_root() / "venvs" / f"{stack}-py{STACK_PYTHON.replace('.', '')}-{key}"


def _marker_ok(folder: Path, stack: str) -> tuple[bool, str]:
    """Whether ``folder`` holds a complete venv of the current lock; otherwise the reason."""
    marker = folder / MARKER
    if not marker.is_file():
        return False, "no completion marker (never built, or a build was interrupted)"
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return False, f"unreadable marker {marker}"
    if info.get("lock_sha256") != lock_sha256(stack):
        return False, (f"lock hash mismatch: built from {str(info.get('lock_sha256'))[:12]}, "
                       f"{LOCK_FILES[stack]} is now {lock_sha256(stack)[:12]}")
    python = folder / "bin" / "python"
    try:
        subprocess.run([str(python), "-c", "import sys"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False, f"{python} does not run (its base interpreter moved?)"
    return True, ""


def stack_python(stack: str) -> Path:
    """The Python of a built stack, or a clear error saying how to build it."""
    folder = stack_dir(stack)
    ok, why = _marker_ok(folder, stack)
    if not ok:
        raise StackError(f"the {stack} stack is not built at {folder}: {why}. Run the notebook's set-up cell "
                         f"(or `make setup` / `python -m nbhelpers.stacks build {stack}`).")
    return folder / "bin" / "python"


def _run_logged(cmd: list[str], env: dict[str, str], log: Callable[[str], None], tail: list[str]) -> int:
    """Run an installer command, streaming its own output lines to ``log`` and keeping the last ones."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            log(line)
            tail.append(line)
            del tail[:-40]
    return proc.wait()


def ensure_uv(log: Callable[[str], None] = print) -> Path:
    """The pinned uv binary, installed with ``pip install --target`` into the cache: the running Python's
    site-packages (the kernel's) is never touched."""
    target = cache_root() / "tools" / f"uv-{UV_VERSION}"
    uv = target / "bin" / "uv"
    if uv.is_file() and os.access(uv, os.X_OK):
        return uv
    log(f"installing uv {UV_VERSION} into {target} (pip --target: the kernel's own packages are not changed)")
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tail: list[str] = []
    rc = _run_logged([_python_with_pip(), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                      "--target", str(tmp), f"uv=={UV_VERSION}"], dict(os.environ), log, tail)
    if rc != 0 or not (tmp / "bin" / "uv").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise StackError(_explain("installing uv", tail, tmp.parent))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return uv


def _python_with_pip() -> str:
    """This Python when it has pip (a platform kernel), else its base interpreter (a uv-built venv has no pip)."""
    for python in (sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or ""):
        if python and subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return python
    raise StackError("no Python with pip found to install uv: install pip (python -m ensurepip) and rerun")


def find_python() -> str:
    """The interpreter uv builds the stacks on: $TTS_STACK_PYTHON, this Python when it is 3.11, a python3.11 on
    PATH or under pyenv; otherwise the version string, which uv resolves by downloading a managed CPython
    (Kaggle and Colab with internet on)."""
    if os.environ.get("TTS_STACK_PYTHON"):
        return os.environ["TTS_STACK_PYTHON"]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == STACK_PYTHON and sys.prefix == sys.base_prefix:
        return sys.executable
    found = shutil.which(f"python{STACK_PYTHON}")
    if found:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv_root.glob(f"{STACK_PYTHON}.*/bin/python{STACK_PYTHON}")) if pyenv_root.is_dir() else []
    return str(candidates[-1]) if candidates else STACK_PYTHON


def _explain(what: str, tail: list[str], where: Path) -> str:
    """The installer's own last lines, then what went wrong in plain words and what to do."""
    text = "\n".join(tail[-15:])
    lowered = text.lower()
    if "no space left" in lowered or "errno 28" in lowered or "disk quota" in lowered:
        free = shutil.disk_usage(where if where.exists() else cache_root().anchor).free / 2**30
        advice = (f"the disk is full at {where} ({free:.1f} GB free now). Free space (delete old venvs under "
                  f"{cache_root() / 'venvs'}, or `uv cache clean`), or set TTS_SUITE_CACHE to a bigger disk "
                  f"(never /kaggle/working: it is the 20 GB output).")
    elif any(s in lowered for s in ("failed to fetch", "connection refused", "dns error", "network",
                                    "could not connect", "temporary failure in name resolution",
                                    "no matching distribution", "failed to download", "tcp connect error")):
        advice = ("the package index could not be reached. On Kaggle turn on Settings > Internet (phone-verified "
                  "account); on Colab check the runtime is connected; behind a proxy set UV_INDEX_URL.")
    else:
        advice = "read the installer's message above; rerun the set-up cell once it is fixed."
    return f"{what} failed:\n{text}\n\n=> {advice} Nothing in your workspace was touched."


def _check_disk(stack: str, uv_cache: Path) -> None:
    need = COLD_BUILD_GB[stack] if not any(uv_cache.glob("wheels-*")) else COLD_BUILD_GB[stack] / 4
    where = cache_root()
    free = shutil.disk_usage(where).free / 2**30
    if free < need:
        raise StackError(f"not enough disk to build the {stack} stack at {where}: about {need:.1f} GB needed, "
                         f"{free:.1f} GB free. Free space or set TTS_SUITE_CACHE to a folder on a bigger disk "
                         f"(not /kaggle/working). Nothing in your workspace was touched.")


def ensure_stack(stack: str, *, log: Callable[[str], None] = print) -> Stack:
    """Reuse ``stack``'s venv when its marker matches the lock; otherwise build it aside and move it into place
    only when complete (a failed or interrupted build never leaves a venv that looks usable)."""
    folder, start = stack_dir(stack), time.monotonic()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{stack}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two notebooks (or CI jobs) building at once: the second waits
        ok, why = _marker_ok(folder, stack)
        if not ok:
            _build(stack, folder, why, log)
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    return Stack(stack, folder, folder / "bin" / "python", info["lock_sha256"], info["python_version"],
                 built_now=not ok, seconds=round(time.monotonic() - start, 1))


def _build(stack: str, folder: Path, why: str, log: Callable[[str], None]) -> None:
    uv = ensure_uv(log)
    uv_cache = cache_root() / "uv"
    _check_disk(stack, uv_cache)
    log(f"building the {stack} stack from {LOCK_FILES[stack]} ({why})")
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache), "UV_LINK_MODE": "hardlink",
           "UV_PYTHON_INSTALL_DIR": str(cache_root() / "python"), "VIRTUAL_ENV": ""}
    python = find_python()
    env["UV_PYTHON_DOWNLOADS"] = "automatic" if python == STACK_PYTHON else "never"
    tail: list[str] = []
    try:
        steps = [[str(uv), "venv", "--relocatable", "--python", python, str(tmp)],
                 [str(uv), "pip", "sync", "--compile-bytecode", "--python", str(tmp / "bin" / "python"),
                  str(lock_path(stack))]]
        for cmd in steps:
            if _run_logged(cmd, env, log, tail) != 0:
                raise StackError(_explain(f"building the {stack} stack ({' '.join(cmd[1:3])})", tail, cache_root()))
        version = subprocess.run([str(tmp / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        if not version.startswith(STACK_PYTHON + "."):
            raise StackError(f"the {stack} stack got Python {version}, but its lock is for {STACK_PYTHON}: set "
                             f"TTS_STACK_PYTHON to a Python {STACK_PYTHON} interpreter")
        marker = {"stack": stack, "lock_file": LOCK_FILES[stack], "lock_sha256": lock_sha256(stack),
                  "python_version": version, "uv_version": UV_VERSION, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp_marker = tmp / (MARKER + ".tmp")
        tmp_marker.write_text(json.dumps(marker, indent=1), encoding="utf-8")
        tmp_marker.rename(tmp / MARKER)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            tail.append(str(err))
            raise StackError(_explain(f"building the {stack} stack", tail, cache_root())) from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def link(stack: str, name: str) -> Path:
    """Point ``<project>/<name>`` (e.g. ``.venv``) at the stack's venv, for editors and the Makefile."""
    target, dest = stack_dir(stack), PROJECT_ROOT / name
    tmp = dest.with_name(f"{name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(dest)
    return dest


LINKS = {"main": ".venv", "parler": ".venv-parler", "kernel": ".venv-kernel"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.stacks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or reuse) stacks")
    b.add_argument("stacks", nargs="*", default=["main", "parler"], choices=list(LOCK_FILES))
    b.add_argument("--link", action="store_true", help="point .venv/.venv-parler/.venv-kernel at them")
    p = sub.add_parser("python", help="print the Python of a built stack")
    p.add_argument("stack", choices=list(LOCK_FILES))
    args = parser.parse_args(argv)
    try:
        if args.command == "python":
            print(stack_python(args.stack))
            return 0
        for name in args.stacks:
            stack = ensure_stack(name, log=lambda line: print(f"  {line}", flush=True))
            print(stack.describe(), flush=True)
            if args.link:
                print(f"  {link(name, LINKS[name])} -> {stack.dir}")
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
