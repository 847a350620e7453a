"""Where are we running, on what hardware, and with which dtype: the facts every notebook prints first
(notebook 00's command line is :mod:`nbhelpers.environment`)."""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

KAGGLE_WORKING = Path("/kaggle/working")
COLAB_DRIVE = Path("/content/drive/MyDrive")


def detect_platform() -> str:
    """Return 'kaggle-batch', 'kaggle-interactive', 'colab' or 'local'.

    Kaggle sets KAGGLE_KERNEL_RUN_TYPE ('Batch' for Save & Run All, 'Interactive' otherwise); Colab sets
    COLAB_RELEASE_TAG (older runtimes only have the google.colab module).
    """
    run_type = os.environ.get("KAGGLE_KERNEL_RUN_TYPE")
    if run_type is not None or os.environ.get("KAGGLE_URL_BASE"):
        return "kaggle-batch" if run_type == "Batch" else "kaggle-interactive"
    if os.environ.get("COLAB_RELEASE_TAG") or os.environ.get("COLAB_GPU") is not None:
        return "colab"
    return "local"


@dataclass
class GPU:
    index: int
    name: str
    memory_gib: float
    capability: tuple[int, int]


def gpu_info() -> list[GPU]:
    """The CUDA devices torch can see (empty without torch or without a GPU)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append(GPU(i, props.name, round(props.total_memory / 2**30, 1), (props.major, props.minor)))
    return gpus


def recommended_dtype(capability: tuple[int, int] | None = None, *, cuda: bool | None = None) -> str:
    """'bfloat16' on Ampere or newer (compute capability >= 8.0), 'float16' on older GPUs such as the T4
    (7.5, no bf16), 'float32' on CPU. With no arguments, asks torch about device 0."""
    if capability is None and cuda is None:
        gpus = gpu_info()
        if not gpus:
            return "float32"
        capability = gpus[0].capability
    if capability is None or cuda is False:
        return "float32"
    return "bfloat16" if capability >= (8, 0) else "float16"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that smoke runs are repeatable."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:
        pass


def package_versions(names: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that matter for reproducing a result ('-' when absent)."""
    names = names or (
        "torch", "torchaudio", "transformers", "parler-tts", "coqui-tts", "kokoro", "pocket-tts",
        "accelerate", "peft", "datasets", "onnxruntime", "numpy",
    )
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def stack_name() -> str:
    """Which of the two dependency stacks this interpreter runs: 'parler' or 'main'."""
    try:
        metadata.version("parler-tts")
        return "parler"
    except metadata.PackageNotFoundError:
        return "main"


@dataclass
class EnvironmentReport:
    platform: str
    python: str
    os: str
    cpu_count: int
    memory_gib: float | None
    stack: str
    gpus: list[dict[str, Any]] = field(default_factory=list)
    dtype: str = "float32"
    packages: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB, sm_{g['capability'][0]}{g['capability'][1]})"
                         for g in self.gpus) or "none"
        mem = f"{self.memory_gib:.1f} GiB" if self.memory_gib else "?"
        pk = ", ".join(f"{k} {v}" for k, v in self.packages.items() if v != "-")
        return (f"platform : {self.platform}\npython   : {self.python} on {self.os}\n"
                f"cpu/mem  : {self.cpu_count} cores, {mem}\ngpus     : {gpus}\ndtype    : {self.dtype}\n"
                f"stack    : {self.stack}\npackages : {pk}")


def _memory_gib() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:
        return None


def environment_report(print_it: bool = False) -> EnvironmentReport:
    """Collect (and optionally print) the environment facts shown at the top of every notebook."""
    gpus = gpu_info()
    report = EnvironmentReport(
        platform=detect_platform(),
        python=sys.version.split()[0],
        os=f"{platform.system()} {platform.release()}",
        cpu_count=os.cpu_count() or 1,
        memory_gib=_memory_gib(),
        stack=stack_name(),
        gpus=[asdict(g) for g in gpus],
        dtype=recommended_dtype(gpus[0].capability) if gpus else "float32",
        packages=package_versions(),
    )
    if print_it:
        print(report)
    return report


def is_headless() -> bool:
    """True in papermill/suite runs (the runner sets TTS_HEADLESS=1) and Kaggle batch runs: notebooks skip
    interactive widgets then."""
    return os.environ.get("TTS_HEADLESS") == "1" or detect_platform() == "kaggle-batch"


class ModelAccessError(RuntimeError):
    """Weights could not be had from the Hugging Face hub; the message names the model and how to get access."""


def explain_hub_error(model_id: str, err: BaseException) -> ModelAccessError | None:
    """A clear error for a hub failure while loading ``model_id`` (gated, missing, no token, offline), or None
    when ``err`` is not about hub access. Callers raise it ``from err`` instead of falling back silently."""
    text = f"{type(err).__name__}: {err}"
    page = f"https://huggingface.co/{model_id}"
    token = ("set HF_TOKEN (Kaggle: Add-ons > Secrets, attached to the notebook; Colab: the key icon > Secrets, "
             "notebook access on; elsewhere: the environment variable); the notebook hands it to the stages")
    if "GatedRepo" in text or "gated" in text.lower() or " 403" in text or "403 Client Error" in text:
        why = f"{model_id} is gated: request access at {page} (logged in), then {token}."
    elif "401" in text or "Unauthorized" in text:
        why = f"{model_id} needs a Hugging Face token with access to it: {token}."
    elif "RepositoryNotFound" in text or "404" in text:
        why = f"{model_id} does not exist on the hub or is private: check the id at {page}, or {token}."
    elif "LocalEntryNotFound" in text or "offline" in text.lower() or "HF_HUB_OFFLINE" in text:
        why = (f"{model_id} is not in the local hub cache and downloads are off (HF_HUB_OFFLINE): turn the internet "
               f"on (Kaggle: Settings > Internet) or attach a copy of the model.")
    else:
        return None
    return ModelAccessError(f"cannot load {model_id}: {why} ({text[:300]})")
