"""ONNX Runtime helpers shared by the stages and 06: the locally usable execution providers in preference order,
a session on one of them, and derived models (int8 quantisations) cached by the source's content hash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..paths import sha256_file

# ONNX Runtime providers worth benchmarking, in preference order; Azure (remote) is never a local backend.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider",
                  "QNNExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")
PROVIDER_DEVICE = {"TensorrtExecutionProvider": "cuda:0", "CUDAExecutionProvider": "cuda:0",
                   "OpenVINOExecutionProvider": "openvino", "QNNExecutionProvider": "npu-qnn",
                   "DmlExecutionProvider": "directml", "CoreMLExecutionProvider": "coreml"}


def ort_providers() -> list[str]:
    """Installed ONNX Runtime execution providers that run locally, best first."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in PROVIDER_ORDER if p in available]


# Why a provider is absent, when the installed onnxruntime does not offer it (what it would take to get it).
PROVIDER_NEEDS = {"TensorrtExecutionProvider": "needs onnxruntime-gpu with TensorRT libraries and an NVIDIA GPU",
                  "CUDAExecutionProvider": "needs onnxruntime-gpu (it replaces onnxruntime) and an NVIDIA GPU",
                  "OpenVINOExecutionProvider": "needs onnxruntime-openvino and an Intel CPU/GPU/NPU",
                  "QNNExecutionProvider": "needs onnxruntime-qnn on a Qualcomm NPU",
                  "DmlExecutionProvider": "DirectML: Windows only",
                  "CoreMLExecutionProvider": "CoreML: macOS only"}


def missing_providers() -> dict[str, str]:
    """Each benchmarkable provider the installed onnxruntime lacks here, with what it needs: recorded as not
    available rather than simulated."""
    have = set(ort_providers())
    return {p: PROVIDER_NEEDS[p] for p in PROVIDER_ORDER if p not in have and p in PROVIDER_NEEDS}


def ort_session(path: str | os.PathLike, provider: str, threads: int | None = None) -> Any:
    """An InferenceSession on ``provider`` (CPU as fallback for unsupported ops)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    providers = [provider] + (["CPUExecutionProvider"] if provider != "CPUExecutionProvider" else [])
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def derived_model(src: str | os.PathLike, cache: str | os.PathLike, tag: str,
                  build: Callable[[Path, Path], Any]) -> Path:
    """``<cache>/<stem>.<sha256 prefix>.<tag>.onnx``: ``build(src, tmp)`` run once per source content and
    published atomically, so a changed model is rebuilt and a killed build is never taken for a finished one."""
    src = Path(src)
    dest = Path(cache) / f"{src.stem}.{sha256_file(src)[:16]}.{tag}.onnx"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{os.getpid()}.tmp.onnx")
        build(src, tmp)
        tmp.replace(dest)
    return dest


def quantize_onnx_int8(src: str | os.PathLike, cache: str | os.PathLike) -> Path:
    """ORT dynamic int8 quantisation of an ONNX model (weights int8, activations quantised on the fly), cached
    by :func:`derived_model` as ``<cache>/<stem>.<sha256 prefix>.int8.onnx``."""

    def build(source: Path, out: Path) -> None:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser warns about every tensor it leaves in float
        try:
            quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)

    return derived_model(src, cache, "int8", build)


def cache_dir() -> Path:
    """Where derived models (int8 quantisations) are kept across runs: $TTS_BENCH_CACHE or
    ~/.cache/tts-suite/bench (keyed by the source file's sha256, so a changed model is re-quantised)."""
    root = Path(os.environ.get("TTS_BENCH_CACHE") or Path.home() / ".cache" / "tts-suite" / "bench")
    root.mkdir(parents=True, exist_ok=True)
    return root
