"""Install this stage's pinned packages on Kaggle/Colab, keeping the platform's CUDA torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

KEEP_PLATFORM = re.compile(r"^(torch|torchaudio|torchvision|triton|nvidia-[\w-]+)==")


def pinned_requirements(requirements: str | os.PathLike) -> list[str]:
    """The ``name==version`` pins of a compiled requirements file, minus torch and its CUDA companions."""
    pins = []
    for line in Path(requirements).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not KEEP_PLATFORM.match(line):
            pins.append(line)
    return pins


def install_stage_packages(requirements: str | os.PathLike) -> None:
    """pip-install the main stack's pins into this Python (Kaggle/Colab only; locally `make setup` did it)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pinned_requirements(requirements)], check=True)
