"""Every pin of every lock installs on the locked Python with pip, which honours Requires-Python upper bounds
(uv ignores them when it resolves: kokoro 0.9.4's `<3.13` passed `uv pip compile` and failed pip on Colab).

The check (`scripts/platform_check.py locks`) runs pip's own PackageFinder on index pages only, no downloads
(the index here serves no PEP 658 metadata, so `pip install --dry-run` would download every wheel: many GB);
about 35-50 s for the 278 pins of the three locks. Needs the package index (pypi.org or $UV_INDEX_URL).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

from nbhelpers import stacks

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "platform_check.py"
LOCKS = [ROOT / name for name in stacks.LOCK_FILES.values()]



def _load():
    spec = importlib.util.spec_from_file_location("platform_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("platform_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "locks", *args], capture_output=True, text=True, timeout=600)


def test_every_pin_of_every_lock_installs_on_the_locked_python_with_pip():
    done = _check(*map(str, LOCKS))
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"target Python {stacks.STACK_PYTHON}" in done.stdout
    assert " 0 not installable" in done.stdout


def test_a_pin_whose_requires_python_excludes_the_locked_python_fails(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("six==1.17.0\n    # via test\ndjango==6.0\n    # Requires-Python >=3.12\n")
    done = _check(str(lock))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT INSTALLABLE: django==6.0 (requirements.txt): Requires-Python '>=3.12'" in done.stdout
    assert "six" not in done.stdout.split("NOT INSTALLABLE", 1)[1]


def test_an_upper_bound_is_honoured_as_pip_does_on_colab(tmp_path):
    """kokoro 0.9.4 declares Requires-Python <3.13: refused for Colab's 3.13, accepted for Kaggle's 3.12."""
    lock = tmp_path / "requirements.txt"
    lock.write_text("kokoro==0.9.4\n")
    on_313 = _check("--python", "3.13", str(lock))
    assert on_313.returncode == 1 and "kokoro==0.9.4" in on_313.stdout, on_313.stdout + on_313.stderr
    on_312 = _check("--python", "3.12", str(lock))
    assert on_312.returncode == 0, on_312.stdout + on_312.stderr


def test_a_version_that_does_not_exist_fails(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("six==0.0.999\n")
    done = _check(str(lock))
    assert done.returncode == 1 and "no file of this version" in done.stdout, done.stdout + done.stderr


def test_read_pins_takes_exact_pins_only(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nFoo_Bar==1.0\n    # via x\nmisaki[en]==0.9.4 ; python_version < '3.13'\n"
                    "torch==2.10.0+cu128\ngoogle-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\n"
                    "setuptools>=70,<82\n-e .\n")
    assert _load().read_pins(lock) == {"foo-bar": "1.0", "misaki": "0.9.4", "torch": "2.10.0+cu128"}
