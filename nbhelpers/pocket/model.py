"""Building the Pocket TTS model to fine-tune: the released LSD-head English model from the hub (GPU
profiles) or a small random-weight configuration (offline smoke), with the text lookup table rebuilt for the
new SentencePiece vocabulary. Every model is described by a YAML config that ``TTSModel.load_model`` reads."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

TINY = "tiny"
FLOW_TYPES = ("lsd", "flow_matching")

# A small random-weight model that trains in a fraction of a second per step on CPU (flow LM ~0.2M
# parameters, a narrow Mimi codec). Mimi's latent width (32) and frame rate (12.5 Hz) match the releases.
TINY_CONFIG: dict[str, Any] = {
    "weights_path": None,
    "default_temperature": 0.7,
    "flow_lm": {
        "insert_bos_before_voice": True, "dtype": "float32",
        "flow": {"depth": 2, "dim": 64, "type": "lsd"},
        "transformer": {"d_model": 64, "hidden_scale": 2, "max_period": 10000, "num_heads": 4, "num_layers": 2},
        "lookup_table": {"dim": 64, "n_bins": 0, "tokenizer": "sentencepiece", "tokenizer_path": ""},
        "weights_path": None,
    },
    "mimi": {
        "dtype": "float32", "sample_rate": 24000, "inner_dim": 32, "outer_dim": 64, "channels": 1, "frame_rate": 12.5,
        "seanet": {"dimension": 64, "channels": 1, "n_filters": 8, "n_residual_layers": 1, "ratios": [6, 5, 4],
                   "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 3, "dilation_base": 2,
                   "pad_mode": "constant", "compress": 2},
        "transformer": {"d_model": 64, "num_heads": 4, "num_layers": 1, "layer_scale": 0.01, "context": 250,
                        "dim_feedforward": 128, "input_dimension": 64, "output_dimensions": [64]},
        "quantizer": {"dimension": 32, "output_dimension": 64},
        "weights_path": None,
    },
}


@contextlib.contextmanager
def keep_torch_threads():
    """pocket_tts.models.tts_model calls torch.set_num_threads(1) at import: undo that."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


with keep_torch_threads():  # importing any pocket_tts module runs that import first
    from pocket_tts.models.tts_model import TTSModel


def base_config(model: str) -> dict[str, Any]:
    """The YAML config (as a dict) of ``model``: ``tiny``, a packaged config name (``english``), or a path."""
    if model == TINY:
        return copy.deepcopy(TINY_CONFIG)
    from pocket_tts.utils.config import CONFIGS_DIR

    path = Path(model)
    if not path.suffix:
        path = CONFIGS_DIR / f"{model}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"Pocket TTS config {model!r} not found ({path}); use 'tiny', a packaged name "
                                f"({', '.join(sorted(p.stem for p in CONFIGS_DIR.glob('*.yaml')))}) or a YAML path")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def finetune_config(model: str, tokenizer_path: str | Path, n_bins: int, *, flow_type: str | None = None,
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of the model being trained: ``model``'s architecture, the new tokenizer, no weight files
    (the training checkpoint carries every weight, Mimi included), no English-only text rewrites."""
    cfg = base_config(model)
    flow = cfg["flow_lm"]
    if flow_type is not None:
        if flow_type not in FLOW_TYPES:
            raise ValueError(f"flow_type must be one of {FLOW_TYPES}, got {flow_type!r}")
        if flow["flow"].get("type", "lsd") != flow_type and model != TINY:
            raise ValueError(f"{model} has a {flow['flow'].get('type', 'lsd')} head; starting it as {flow_type} "
                             f"would discard its trained head: pick an LSD-head model or the tiny config")
        flow["flow"]["type"] = flow_type
    if flow["flow"].get("type", "lsd") not in FLOW_TYPES:
        raise ValueError(f"{model} uses a {flow['flow']['type']!r} head, which this stage cannot train: start "
                         f"from an LSD-head model (english, english_2026-10, french ...) or 'tiny'")
    flow["lookup_table"].update(n_bins=int(n_bins), tokenizer="sentencepiece", tokenizer_path=str(tokenizer_path))
    flow["weights_path"] = None
    cfg["mimi"]["weights_path"] = None
    for key in ("weights_path", "weights_path_without_voice_cloning"):
        cfg[key] = None
    cfg["replace_characters"] = {}
    cfg["capitalize_first_letter"] = False  # not a convention of Indic scripts
    for key, value in (overrides or {}).items():
        cfg[key] = value
    return cfg


def write_config(cfg: dict[str, Any], path: str | Path) -> Path:
    """Write a config YAML (validated by the package's own schema first)."""
    from pocket_tts.utils.config import Config

    Config(**cfg)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def build_from_config(config_path: str | Path, *, seed: int = 0):
    """A random-weight TTSModel from a config with no weight files (Mimi included), seeded."""
    from pocket_tts.utils.config import load_config

    torch.manual_seed(seed)
    with keep_torch_threads():
        cfg = load_config(config_path)
        model = TTSModel._from_pydantic_config_with_weights(cfg, cfg.default_temperature, 1, None,
                                                            cfg.default_eos_threshold, origin=Path(config_path))
    return model


def load_released(model: str):
    """The released model ``model`` (downloads config weights from the Hugging Face hub). pocket-tts falls back
    silently to its weights without voice cloning when the gated voice-cloning repo is not accessible; fine-tuning
    with voice prompts needs them, so that fallback is an error naming the repo and how to get access."""
    from ..env import ModelAccessError, explain_hub_error

    try:
        with keep_torch_threads():
            tts = TTSModel.load_model(language=model) if not Path(model).suffix else TTSModel.load_model(config=model)
    except OSError as err:
        clear = explain_hub_error(f"pocket-tts model {model!r}", err)
        if clear is None:
            raise
        raise clear from err
    if not getattr(tts, "has_voice_cloning", True):
        raise ModelAccessError(
            f"the Pocket TTS {model!r} voice-cloning weights (hub repo kyutai/pocket-tts, gated) were not accessible, "
            "and pocket-tts fell back to the weights without voice cloning, which cannot be fine-tuned with voice "
            "prompts. Request access at https://huggingface.co/kyutai/pocket-tts (logged in), then set HF_TOKEN "
            "(Kaggle: Add-ons > Secrets; Colab: the key icon > Secrets); the notebook hands it to the stages.")
    return tts


def reset_text_embedding(tts_model, tokenizer_path: str | Path, n_bins: int, *, seed: int = 0) -> None:
    """Replace the English lookup table with a fresh one for the new vocabulary (same width, and the same
    low-rank projection if the model has one, so the transformer keeps its input scale)."""
    from pocket_tts.modules.text_conditioner import LUTConditioner

    old = tts_model.flow_lm.conditioner
    rank = old.embed.weight.shape[1] if old.proj is not None else None
    new = LUTConditioner(n_bins=n_bins, tokenizer_path=str(tokenizer_path), dim=old.dim, output_dim=old.output_dim,
                         tokenizer="sentencepiece", rank=rank)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        std = float(old.embed.weight.std())
        new.embed.weight.copy_(torch.randn(new.embed.weight.shape, generator=g) * std)
        if rank is not None:
            new.proj.weight.copy_(old.proj.weight)
    tts_model.flow_lm.conditioner = new.to(old.embed.weight.device)


def build_model(model: str, tokenizer_path: str | Path, n_bins: int, config_path: str | Path, *, seed: int = 0,
                flow_type: str | None = None):
    """The model to fine-tune and the path of its config YAML.

    ``tiny`` builds offline with random weights. Any other name loads the released weights from the hub, then
    resets the text embedding for the new vocabulary; everything else (backbone, LSD head, EOS head, Mimi,
    latent statistics) starts from the release.
    """
    cfg = finetune_config(model, tokenizer_path, n_bins, flow_type=flow_type)
    write_config(cfg, config_path)
    if model == TINY:
        return build_from_config(config_path, seed=seed), Path(config_path)
    tts = load_released(model)
    reset_text_embedding(tts, tokenizer_path, n_bins, seed=seed)
    from pocket_tts.utils.config import load_config

    tts.config = load_config(config_path)
    return tts, Path(config_path)


def parameter_counts(tts_model) -> dict[str, int]:
    """Parameters of the flow LM (trained) and of Mimi (frozen)."""
    flow = sum(p.numel() for p in tts_model.flow_lm.parameters())
    mimi = sum(p.numel() for p in tts_model.mimi.parameters())
    return {"flow_lm": flow, "mimi": mimi, "total": flow + mimi}


def load_finetuned(config_path: str | Path, checkpoint: str | Path, *, temp: float | None = None,
                   decode_steps: int | None = None, eos_threshold: float | None = None):
    """A fine-tuned model through the package's own loader (EMA weights when the checkpoint has them);
    ``eos_threshold``: the end-of-speech logit above which speech ends (None: the config's, -4.0; the profiles'
    ``sample_eos_threshold``)."""
    if decode_steps is None:
        flow_type = yaml.safe_load(Path(config_path).read_text())["flow_lm"]["flow"].get("type", "lsd")
        decode_steps = 16 if flow_type == "flow_matching" else 1
    with keep_torch_threads():
        return TTSModel.load_model(config=str(config_path), checkpoint=str(checkpoint), temp=temp,
                                   sampler_decode_steps=decode_steps, eos_threshold=eos_threshold)


def synthesize(tts_model, sentences: list[str], voice_prompt: str | Path, *, seed: int) -> list[np.ndarray]:
    """Speak each sentence in the voice of ``voice_prompt`` with a fixed sampling seed (the caller's RNG
    streams are left untouched)."""
    out = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        state = tts_model.get_state_for_audio_prompt(Path(voice_prompt))
        for i, text in enumerate(sentences):
            torch.manual_seed(seed + i)
            out.append(tts_model.generate_audio(state, text).float().cpu().numpy().reshape(-1))
    return out
