"""Kaggle/Colab setup for data prep: the few pinned packages it needs (never torch) and espeak-ng."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ("soundfile", "soxr", "pyloudnorm", "onnxruntime", "datasets", "pandas", "silero-vad")
NO_DEPS = ("silero-vad",)  # its dependencies include torch/torchaudio: keep the platform's CUDA build


def install_data_packages(requirements: str | Path) -> None:
    """pip-install this stage's packages at the versions pinned in ``requirements`` (the main stack's lock
    file), and espeak-ng with apt when it is missing (the smoke corpora need it)."""
    pins = {}
    for line in Path(requirements).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line.strip())
        if m:
            pins[re.sub(r"\[.*\]", "", m.group(1)).lower()] = f"{m.group(1)}=={m.group(2)}"
    wanted = [pins.get(p, p) for p in PACKAGES if p not in NO_DEPS]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *wanted], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *[pins.get(p, p) for p in NO_DEPS]],
                   check=True)
    if shutil.which("espeak-ng") is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], check=False)
