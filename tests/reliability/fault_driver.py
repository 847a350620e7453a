"""Run a stage's real command line with one fault injected from outside the production code (the reliability
tests' driver; both stacks). A function is wrapped in place (``os:replace``, ``torch:save``, ``io:open``...);
from its N-th call whose arguments name a path matching a pattern, the fault fires: SIGKILL of this process,
OSError(ENOSPC) (a partial file is left where the call was writing, as a real full disk does) or OSError(EROFS).
``--arm MODULE:ATTR:REGEX`` starts the count only after a call of that function matching that pattern (e.g. kill
at the 3rd file deleted once an export folder is being removed).

  python tests/reliability/fault_driver.py --at torch:save --match '\\.tmp-step' --nth 2 --fault enospc \\
      -- nbhelpers.parler train --profile smoke ...
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import re
import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def _paths(args: tuple, kwargs: dict) -> list[str]:
    return [os.fspath(a) for a in (*args, *kwargs.values()) if isinstance(a, (str, os.PathLike))]


def _wrap(spec: str, pattern: str, on_match) -> None:
    module_name, attr = spec.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, attr)
    regex = re.compile(pattern) if pattern else None

    def wrapper(*args, **kwargs):
        if regex is None or any(regex.search(p) for p in _paths(args, kwargs)):
            on_match(args, kwargs)
        return original(*args, **kwargs)

    setattr(module, attr, wrapper)
    if module_name == "io" and attr == "open":  # builtins.open is the same function as io.open
        import builtins

        builtins.open = wrapper


@contextlib.contextmanager
def mounted(kind: str, target: Path, options: str, source: str | None = None) -> Iterator[bool]:
    """``mount -t tmpfs -o <options>`` on ``target``, or (``source``) a bind mount remounted with ``options`` (e.g.
    ro); yields whether mounting was permitted (the tests fall back to injecting the fault), unmounts afterwards."""
    target.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", kind, "-o", options, kind, str(target)] if source is None else \
        ["mount", "--bind", source, str(target)]
    ok = subprocess.run(cmd, capture_output=True).returncode == 0
    if ok and source is not None:  # a bind mount is made read-only by a remount
        ok = subprocess.run(["mount", "-o", f"remount,bind,{options}", str(target)], capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(target)], capture_output=True)
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", required=True, help="MODULE:ATTR to wrap")
    parser.add_argument("--match", default="", help="regex a path argument must match (default: every call)")
    parser.add_argument("--nth", type=int, default=1, help="fire from this matching call on")
    parser.add_argument("--fault", choices=("kill", "enospc", "erofs"), required=True)
    parser.add_argument("--arm", help="MODULE:ATTR:REGEX: count only after a matching call of that function")
    parser.add_argument("module")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    state = {"armed": args.arm is None, "calls": 0}

    def fire(call_args: tuple, call_kwargs: dict) -> None:
        if not state["armed"]:
            return
        state["calls"] += 1
        if state["calls"] < args.nth:
            return
        print(f"fault_driver: {args.fault} at call {state['calls']} of {args.at}", file=sys.stderr, flush=True)
        if args.fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        code = errno.ENOSPC if args.fault == "enospc" else errno.EROFS
        target = ([p for p in _paths(call_args, call_kwargs) if os.sep in p] or [""])[-1]  # not a mode like "wb"
        if code == errno.ENOSPC and target and os.path.isdir(os.path.dirname(target) or ".") and not os.path.isdir(target):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # what a write out of space leaves
            os.write(fd, b"\0" * 4096)
            os.close(fd)
        raise OSError(code, os.strerror(code), target)

    if args.arm:
        module_name, attr, pattern = args.arm.split(":", 2)

        def arm(call_args: tuple, call_kwargs: dict) -> None:
            state["armed"] = True

        _wrap(f"{module_name}:{attr}", pattern, arm)
    _wrap(args.at, args.match, fire)
    sys.argv = [args.module, *args.argv]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
