"""Every stage that exists runs from the command line: `python -m nbhelpers.<stage> --help`."""

import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers.env import stack_name
from nbhelpers.paths import PROJECT_ROOT

STACK_OF = {"data": "main", "parler": "parler", "distill": "parler", "vits": "main", "kokoro": "main",
            "bench": "main", "pocket": "main", "suite": "main"}
HERE = stack_name()
MODULES = sorted(f"nbhelpers.{s}" for s, stack in STACK_OF.items() if stack == HERE and (
    (PROJECT_ROOT / "nbhelpers" / s / "__main__.py").is_file() or (PROJECT_ROOT / "nbhelpers" / f"{s}.py").is_file()))
if HERE == "main" and (PROJECT_ROOT / "kaggle_kernels" / "__main__.py").is_file():
    MODULES.append("kaggle_kernels")


def test_this_stack_has_command_line_stages():
    assert MODULES, f"no command-line stage found for the {HERE} stack"


@pytest.mark.parametrize("module", MODULES)
def test_help(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300,
                         cwd=Path(PROJECT_ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
