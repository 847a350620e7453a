"""Kaggle/Colab set-up from inside a notebook: install one stack's pinned packages into the platform's Python,
keeping the CUDA torch it ships, plus espeak-ng. Locally `make setup` has done all this, so it does nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .env import detect_platform
from .paths import PROJECT_ROOT

LOCK_FILES = {"main": "requirements.txt", "parler": "requirements-parler.txt"}
# The platform's own CUDA builds stay; test and lint tools are not needed in a kernel.
KEEP_PLATFORM = re.compile(r"^(torch|torchaudio|torchvision|triton|nvidia-[\w-]+|pytest[\w-]*|ruff)==", re.I)


def stack_requirements(stack: str) -> list[str]:
    """The exact pins of ``stack``'s lock file, minus what the platform keeps."""
    if stack not in LOCK_FILES:
        raise ValueError(f"unknown stack {stack!r}: choose one of {', '.join(LOCK_FILES)}")
    lines = (PROJECT_ROOT / LOCK_FILES[stack]).read_text(encoding="utf-8").splitlines()
    pins = [line.split(";")[0].strip() for line in lines if "==" in line and not line.lstrip().startswith("#")]
    return [p for p in pins if not KEEP_PLATFORM.match(p)]


def install_stack(stack: str, *, force: bool = False) -> list[str]:
    """Install ``stack`` on Kaggle/Colab (or anywhere with ``force``); returns the pins installed.

    Run it before importing transformers/torch-based packages: a package imported before its upgrade keeps
    the old version until the kernel restarts.
    """
    if detect_platform() == "local" and not force:
        print(f"local machine: the {stack} stack comes from `make setup` (kernel tts-{stack}); nothing to install")
        return []
    pins = stack_requirements(stack)
    print(f"installing {len(pins)} pinned packages of the {stack} stack (the platform's torch is kept) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pins], check=True)
    if shutil.which("espeak-ng") is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], check=False)
    return pins
