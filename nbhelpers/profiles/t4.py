"""Does a T4 profile's training fit a 16 GB T4? An estimate from the peak memory measured in docs/benchmarks.md
("02 Parler-TTS fine-tune (training memory per mode)"), checked when the profile is loaded, before any download.

The measurement: parler-tts-mini-v1's shapes (877.8 M parameters, decoder 24 x 1024; Indic Parler-TTS has the same
decoder and 872.5 M), fp16 autocast, batch 4 x 10 s of audio, AdamW. The estimate splits each measured peak into
a fixed part (fp32 weights, plus gradients and two AdamW moments for trainable weights) and activations, and
scales the activations with the worst padded batch, ``batch_size x max_audio_seconds`` (one measured point:
proportional scaling is an assumption, the figures are estimates).
"""

from __future__ import annotations

from typing import Any

T4_PROFILES = ("kaggle-t4", "colab-t4")
T4_BUDGET_GIB = 14.0  # nvidia-smi shows 15360 MiB on a T4; minus ~0.5 GiB CUDA context and allocator slack
GIB = 1024 ** 3

REFERENCE_BATCH, REFERENCE_SECONDS = 4, 10.0  # benchmarks/parler_memory.py --batch 4 --seconds 10
# (mode, gradient checkpointing) -> measured peak GiB, docs/benchmarks.md (H100, torch 2.11, 2026-11-23)
MEASURED_PEAK_GIB = {("full", True): 10.22, ("full", False): 12.94, ("lora", True): 4.54,
                     ("8bit", True): 8.43, ("4bit", True): 2.90}
PARAMS_TOTAL, PARAMS_TRAINABLE_FULL, PARAMS_LORA = 877.8e6, 455.8e6, 5.11e6  # same table
DISTILL_TEACHER, DISTILL_STUDENT = 872.5e6, 322.4e6  # docs/benchmarks.md "03 Parler distillation", kaggle-t4 cut


def _fixed_gib(mode: str) -> float:
    """Weights and optimiser state that do not grow with the batch. 8-bit/4-bit: nothing is taken as fixed (the
    bitsandbytes buffers were not measured apart), so their whole peak scales: the conservative side."""
    if mode == "full":
        return (PARAMS_TRAINABLE_FULL * 16 + (PARAMS_TOTAL - PARAMS_TRAINABLE_FULL) * 4) / GIB
    if mode == "lora":
        return (PARAMS_TOTAL * 4 + PARAMS_LORA * 12) / GIB
    return 0.0


def _activation_gib(mode: str, checkpointing: bool) -> float:
    """Activation memory at the reference batch; without gradient checkpointing, modes not measured that way take
    full mode's measured ratio."""
    measured = MEASURED_PEAK_GIB.get((mode, checkpointing))
    if measured is not None:
        return measured - _fixed_gib(mode)
    no_gc_ratio = _activation_gib("full", False) / _activation_gib("full", True)
    return _activation_gib(mode, True) * no_gc_ratio


def training_memory_gib(stage: str, params: dict[str, Any]) -> dict[str, float]:
    """Estimated peak GPU memory per process for a Parler fine-tune (``parler``) or distillation (``distill``),
    as ``{"fixed": GiB, "activations": GiB, "total": GiB}``."""
    scale = float(params["batch_size"]) * float(params["max_audio_seconds"]) / (REFERENCE_BATCH * REFERENCE_SECONDS)
    checkpointing = bool(params["gradient_checkpointing"])
    if stage == "distill":  # fp32 frozen teacher + the whole student trained in full (an upper bound)
        fixed = (DISTILL_TEACHER * 4 + DISTILL_STUDENT * 16) / GIB
        activations = _activation_gib("full", checkpointing) * scale
    else:
        mode = str(params["mode"])
        fixed, activations = _fixed_gib(mode), _activation_gib(mode, checkpointing) * scale
    return {"fixed": round(fixed, 2), "activations": round(activations, 2), "total": round(fixed + activations, 2)}


class T4MemoryError(ValueError):
    """A T4 profile whose GPU settings cannot work on a T4."""


def check_t4(stage: str, params: dict[str, Any]) -> None:
    """Refuse, before anything is downloaded, a T4 profile that asks for bf16 (a T4 has none) or whose estimated
    training memory exceeds a T4. Other stages and profiles pass untouched."""
    if params.get("profile") not in T4_PROFILES or stage not in ("parler", "distill"):
        return
    where = f"profiles/{stage}.toml [{params['profile']}]"
    if params.get("mixed_precision") == "bf16":
        raise T4MemoryError(f"{where}: mixed_precision = 'bf16', but a T4 (compute capability 7.5) has no bf16; "
                            "use 'auto' or 'fp16'")
    memory = training_memory_gib(stage, params)
    if memory["total"] > T4_BUDGET_GIB:
        raise T4MemoryError(
            f"{where}: batch_size {params['batch_size']} x max_audio_seconds {params['max_audio_seconds']} "
            f"(gradient_checkpointing {params['gradient_checkpointing']}"
            + (f", mode {params['mode']}" if stage == "parler" else "")
            + f") needs about {memory['total']:.1f} GiB per GPU ({memory['fixed']:.1f} weights and optimiser + "
            f"{memory['activations']:.1f} activations, estimated from docs/benchmarks.md), more than the "
            f"{T4_BUDGET_GIB:.0f} GiB a T4 offers. Fix: halve batch_size and double grad_accum (same global batch), "
            "lower max_audio_seconds, turn on gradient_checkpointing"
            + (", or use mode = 'lora'" if stage == "parler" else ""))
