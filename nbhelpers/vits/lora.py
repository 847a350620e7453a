"""LoRA for coqui VITS: low-rank updates on the generator's plain 1-D convolutions and linear layers, the rest of
the generator frozen (its character embeddings excepted), the discriminator trained as usual.

Each adapted layer keeps its own weight and gains ``lora_A`` (rank x in x kernel, the layer's stride, padding and
dilation), ``lora_B`` (out x rank, zero at the start, so training starts from the base model exactly) and a
``lora_scale`` buffer (alpha / rank); a forward hook adds ``scale * B(A(x))`` to its output. All three are in the
state dict, so a coqui checkpoint carries its adapters and :func:`merge_from_state` can rebuild and fold them from
the file alone; folding (``W + scale * B @ A``) is exact, and what is exported (PyTorch bundle, ONNX, int8) is a plain
VITS. Layers under weight normalisation (the waveform decoder, the flows' WaveNets) are not adapted: their weight is
recomputed from ``weight_g``/``weight_v`` and an update could not be folded into it exactly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ADAPTER_KEYS = ("lora_A", "lora_B", "lora_scale")


def _plain(module: nn.Module) -> bool:
    """A Conv1d (ungrouped, zero-padded) or Linear whose weight is a plain parameter (no weight norm)."""
    conv = isinstance(module, nn.Conv1d) and module.groups == 1 and module.padding_mode == "zeros"
    return (conv or isinstance(module, nn.Linear)) and "weight" in module._parameters \
        and not hasattr(module, "parametrizations")


def _hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    x = inputs[0]
    if isinstance(module, nn.Conv1d):
        low = F.conv1d(x, module.lora_A, None, module.stride, module.padding, module.dilation)
        return output + module.lora_scale * F.conv1d(low, module.lora_B.unsqueeze(-1))
    return output + module.lora_scale * F.linear(F.linear(x, module.lora_A), module.lora_B)


def _attach(module: nn.Module, rank: int, scale: float) -> None:
    weight = module.weight
    shape = (rank, *weight.shape[1:])  # conv: rank x in x kernel; linear: rank x in
    a = torch.empty(shape, dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_uniform_(a, a=math.sqrt(5))
    module.lora_A = nn.Parameter(a)
    module.lora_B = nn.Parameter(torch.zeros(weight.shape[0], rank, dtype=weight.dtype, device=weight.device))
    module.register_buffer("lora_scale", torch.tensor(float(scale), dtype=weight.dtype, device=weight.device))
    module._lora_hook = module.register_forward_hook(_hook)


def targets(model: nn.Module, names: list[str]) -> list[str]:
    """Generator layers LoRA adapts: plain layers whose last name part is one of ``names`` (``conv_q``, ``proj``...);
    the discriminator is never adapted."""
    wanted = set(names)
    return [n for n, m in model.named_modules()
            if n.rsplit(".", 1)[-1] in wanted and not n.startswith("disc.") and _plain(m)]


def add_lora(model: nn.Module, names: list[str], rank: int, alpha: float) -> dict[str, Any]:
    """Adapt ``model``'s matching layers with rank-``rank`` LoRA (scale ``alpha / rank``) and freeze the rest of the
    generator except its embeddings (a new language's characters need their own); returns what was adapted and the
    generator's trainable / total parameter counts. Raises when no layer matches (a typo in ``lora_targets``)."""
    layers = targets(model, names)
    if not layers:
        raise ValueError(f"lora_targets {names} match no plain Conv1d/Linear layer of the VITS generator; use layer "
                         "names such as conv_q, conv_k, conv_v, conv_o, conv_1, conv_2, proj")
    modules = dict(model.named_modules())
    for name in layers:
        _attach(modules[name], rank, alpha / rank)
    embeddings = {n for n, m in model.named_modules() if isinstance(m, nn.Embedding)}
    for name, param in model.named_parameters():
        if not name.startswith("disc."):
            owner = name.rsplit(".", 1)[0]
            param.requires_grad_(name.endswith((".lora_A", ".lora_B")) or owner in embeddings)
    return {"lora_layers": len(layers), "lora_rank": rank, "lora_alpha": alpha, **generator_params(model)}


def generator_params(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameters of the generator (the discriminator is training-only)."""
    params = [(n, p) for n, p in model.named_parameters() if not n.startswith("disc.")]
    return {"params_trainable": sum(p.numel() for _, p in params if p.requires_grad),
            "params_total": sum(p.numel() for _, p in params)}


def checkpoint_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """A coqui checkpoint's model state, memory-mapped: reading its names and shapes (:func:`adapter_layout`) does not
    read the weights, so peeking before coqui loads the file does not read it twice."""
    return torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)["model"]


def adapter_layout(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """``layer name -> rank`` of the adapters a state dict holds (empty for a plain VITS checkpoint)."""
    return {k.removesuffix(".lora_A"): int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A")}


def merge_from_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every adapter folded into its layer's weight (``W + scale * B @ A``) and the adapter keys
    removed: loadable into a plain VITS ``model`` (used here only to check the layers exist and are plain)."""
    layout = adapter_layout(state)
    modules = dict(model.named_modules())
    out = {k: v for k, v in state.items() if not k.endswith(tuple(f".{a}" for a in ADAPTER_KEYS))}
    for name in layout:
        if name not in modules or not _plain(modules[name]):
            raise ValueError(f"the checkpoint adapts {name}, which this VITS config has no plain layer for")
        a, b, scale = state[f"{name}.lora_A"], state[f"{name}.lora_B"], state[f"{name}.lora_scale"]
        delta = scale * torch.einsum("or,r...->o...", b.float(), a.float())
        out[f"{name}.weight"] = (state[f"{name}.weight"].float() + delta).to(state[f"{name}.weight"].dtype)
    return out
