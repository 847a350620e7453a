"""Where a Parler-TTS model comes from: a hub id (GPU profiles), a local directory (an earlier export), or
``tiny``, a random-weight model built offline from configs for smoke runs and tests.

Parler-TTS reads two texts with two tokenizers: the transcript ("prompt") goes through the model's own
tokenizer into ``embed_prompts``; the voice description goes through the T5 tokenizer into the text encoder.
Indic Parler-TTS ships them separately, so a :class:`ParlerBundle` always carries both, and an export stores
the description tokenizer in ``description_tokenizer/`` next to the model.

The tiny model uses a byte-level tokenizer (``ByT5Tokenizer`` needs no files and represents any Unicode
text, Kannada included) and a DAC whose encoder/decoder widths are small. Upstream's ``DACModel`` only
passes codebook settings to ``dac.DAC``, so importing this module registers :class:`SizedDACModel` for the
DAC config: it honours optional ``encoder_dim``/``decoder_dim``/``encoder_rates``/``decoder_rates`` config
entries and builds exactly what upstream builds when they are absent (all released checkpoints).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*")
warnings.filterwarnings("ignore", message="Flash attention 2 is not installed")

from dac.model import DAC  # noqa: E402
from parler_tts import (  # noqa: E402
    DACConfig,
    DACModel,
    ParlerTTSConfig,
    ParlerTTSDecoderConfig,
    ParlerTTSForConditionalGeneration,
)
from transformers import AutoModel, AutoTokenizer, ByT5Tokenizer, PreTrainedTokenizerBase, T5Config  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ..env import explain_hub_error  # noqa: E402

# parler-tts warns on every construction that sub-configs are "overwritten" by the shared config (they are
# the same values); keep real errors only
hf_logging.get_logger("parler_tts.modeling_parler_tts").setLevel(hf_logging.ERROR)

HUB_MODELS = {
    "indic": "ai4bharat/indic-parler-tts",
    "mini-v1": "parler-tts/parler-tts-mini-v1",
}
TINY = "tiny"
DESCRIPTION_TOKENIZER_DIR = "description_tokenizer"
SOURCE_FILE = "nbhelpers_source.json"
# DAC defaults (dac.model.DAC): used when a config does not name its own widths
_DAC_WIDTH_KEYS = ("encoder_dim", "decoder_dim", "encoder_rates", "decoder_rates", "codebook_dim")


class SizedDACModel(DACModel):
    """Upstream's DAC wrapper, but the codec's widths and rates come from the config when it names them."""

    def __init__(self, config: DACConfig):
        super(DACModel, self).__init__(config)
        widths = {k: getattr(config, k) for k in _DAC_WIDTH_KEYS if getattr(config, k, None) is not None}
        self.model = DAC(n_codebooks=config.num_codebooks, latent_dim=config.latent_dim,
                         codebook_size=config.codebook_size, **widths)
        self.remove_weight_norm()
        self.apply_weight_norm()


AutoModel.register(DACConfig, SizedDACModel, exist_ok=True)


@dataclass
class ParlerBundle:
    """A model with the two tokenizers it needs and a short name of where it came from."""

    model: ParlerTTSForConditionalGeneration
    prompt_tokenizer: PreTrainedTokenizerBase
    description_tokenizer: PreTrainedTokenizerBase
    source: str

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.model.audio_encoder.config.frame_rate)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.decoder.config.num_codebooks)


def byte_tokenizer(padding_side: str = "right") -> ByT5Tokenizer:
    """A file-free UTF-8 byte tokenizer (384 ids): represents any script without unknown tokens."""
    tok = ByT5Tokenizer()
    tok.padding_side = padding_side
    return tok


def tiny_config(*, codebooks: int = 4, codebook_size: int = 64, hidden: int = 32, layers: int = 4,
                text_layers: int = 2, vocab: int = 384) -> ParlerTTSConfig:
    """Configs of a random model small enough to train for tens of steps on 2 CPU cores in seconds.

    The DAC keeps upstream's strides (hop 512 at 44.1 kHz, 86 frames/s) with tiny channel widths.
    """
    text = T5Config(vocab_size=vocab, d_model=hidden, d_kv=8, d_ff=2 * hidden, num_layers=text_layers,
                    num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    audio = DACConfig(num_codebooks=codebooks, codebook_size=codebook_size, latent_dim=32,
                      encoder_dim=4, decoder_dim=32, frame_rate=86, sampling_rate=44100)
    decoder = ParlerTTSDecoderConfig(
        vocab_size=codebook_size + 1, max_position_embeddings=4096, num_hidden_layers=layers,
        ffn_dim=2 * hidden, num_attention_heads=4, hidden_size=hidden, num_codebooks=codebooks,
        pad_token_id=codebook_size, eos_token_id=codebook_size, bos_token_id=codebook_size + 1,
        decoder_start_token_id=codebook_size + 1, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        rope_embeddings=True, cross_attention_implementation_strategy=None)
    return ParlerTTSConfig.from_sub_models_config(
        text, audio, decoder, vocab_size=vocab, pad_token_id=codebook_size, decoder_start_token_id=codebook_size + 1)


def _set_generation_defaults(model: ParlerTTSForConditionalGeneration) -> None:
    gc = model.generation_config
    dec = model.config.decoder
    gc.pad_token_id, gc.eos_token_id = dec.pad_token_id, dec.eos_token_id
    gc.bos_token_id = gc.decoder_start_token_id = dec.decoder_start_token_id
    gc.do_sample, gc.max_length = True, int(10 * model.audio_encoder.config.frame_rate)


def build_tiny(seed: int = 0, *, attention: str = "sdpa", **sizes: Any) -> ParlerBundle:
    """A random-weight tiny Parler-TTS (about 0.4 M parameters) with byte tokenizers, built offline; ``attention``
    is the decoder's attention implementation ("sdpa" or "eager")."""
    config = tiny_config(**sizes)
    if attention != "sdpa":  # sdpa is the decoder's default; T5 has none, so only another choice is set model-wide
        config._attn_implementation = config.decoder._attn_implementation = attention
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ParlerTTSForConditionalGeneration(config)
    model.generation_config = model.generation_config.from_model_config(model.config)
    _set_generation_defaults(model)
    return ParlerBundle(model, byte_tokenizer("left"), byte_tokenizer("right"), TINY)


def resolve_source(source: str) -> str:
    """Map a short name (``indic``, ``mini-v1``) to its hub id; other values pass through."""
    return HUB_MODELS.get(source, source)


def tiny_base_dir(root: str | Path, seed: int) -> Path:
    """Where the tiny random model for ``seed`` is materialised, so that every path (quantised loading,
    merge on export, distillation) reads the same weights from disk."""
    return Path(root) / f"tiny-seed{seed}"


def materialise_tiny(root: str | Path, seed: int = 0) -> Path:
    """Save the tiny model for ``seed`` under ``root`` once (atomically) and return its directory."""
    target = tiny_base_dir(root, seed)
    if not (target / SOURCE_FILE).is_file():
        tmp = target.with_name(target.name + ".tmp")
        save_bundle(build_tiny(seed), tmp, extra={"tiny_seed": seed})
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
    return target


def load_bundle(source: str, *, torch_dtype: torch.dtype | None = None, quantization: str | None = None,
                device_map: Any = None, attn_implementation: str | None = None,
                compute_dtype: torch.dtype = torch.float16) -> ParlerBundle:
    """Load a model and both tokenizers from a hub id / short name or a local directory.

    ``quantization`` is ``None``, ``"8bit"`` or ``"4bit"`` (bitsandbytes, CUDA only; quantised layers
    compute in ``compute_dtype``, the training precision). The description
    tokenizer comes from ``description_tokenizer/`` in an export, else from the text encoder's hub id, as
    Indic Parler-TTS documents.
    """
    name = resolve_source(source)
    if name == TINY:
        raise ValueError("the tiny model is built, not loaded: call materialise_tiny(dir, seed) and load that dir")
    kwargs: dict[str, Any] = {}
    if torch_dtype is not None:
        kwargs["torch_dtype"] = torch_dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if quantization is not None:
        kwargs["quantization_config"] = bnb_config(quantization, compute_dtype)
        kwargs["device_map"] = device_map or {"": torch.cuda.current_device()}
    elif device_map is not None:
        kwargs["device_map"] = device_map
    model = _from_hub(lambda n: ParlerTTSForConditionalGeneration.from_pretrained(n, **kwargs), name)
    prompt_tok = AutoTokenizer.from_pretrained(name)
    local = Path(name)
    desc_dir = local / DESCRIPTION_TOKENIZER_DIR
    if desc_dir.is_dir():
        desc_tok = AutoTokenizer.from_pretrained(desc_dir)
    else:
        desc_tok = AutoTokenizer.from_pretrained(model.config.text_encoder._name_or_path)
    prompt_tok.padding_side, desc_tok.padding_side = "left", "right"
    label = source
    if (local / SOURCE_FILE).is_file():
        label = json.loads((local / SOURCE_FILE).read_text()).get("source", source)
    return ParlerBundle(model, prompt_tok, desc_tok, label)


def bnb_config(quantization: str, compute_dtype: torch.dtype = torch.float16) -> Any:
    """A bitsandbytes config for an 8-bit or 4-bit (NF4) frozen base; a clear error without CUDA. The T5
    text encoder is not quantised: it stays in fp32 like in the other modes (it overflows in fp16)."""
    if quantization not in ("8bit", "4bit"):
        raise ValueError(f"quantization must be '8bit' or '4bit', got {quantization!r}")
    if not torch.cuda.is_available():
        raise RuntimeError(f"{quantization} quantisation needs a CUDA GPU (bitsandbytes); this machine has none. "
                           "Use mode 'full' or 'lora' on CPU, or run on a Kaggle/Colab T4.")
    from transformers import BitsAndBytesConfig

    # the codebook heads and projections into the decoder stay in full precision: they are small and sensitive
    skip = ["lm_heads", "enc_to_dec_proj", "embed_prompts", "text_encoder"]
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=skip)


def save_bundle(bundle: ParlerBundle, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """``save_pretrained`` of the model, the prompt tokenizer (root) and the description tokenizer
    (``description_tokenizer/``), plus the generation config; loadable with :func:`load_bundle` or with
    ``ParlerTTSForConditionalGeneration.from_pretrained``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bundle.model.save_pretrained(directory, safe_serialization=True)
    bundle.model.generation_config.save_pretrained(directory)
    bundle.prompt_tokenizer.save_pretrained(directory)
    bundle.description_tokenizer.save_pretrained(directory / DESCRIPTION_TOKENIZER_DIR)
    (directory / SOURCE_FILE).write_text(json.dumps({"source": bundle.source, **(extra or {})}, indent=1))
    return directory


def get_bundle(source: str, *, workspace_dir: str | Path, seed: int = 0, **load_kwargs: Any) -> ParlerBundle:
    """The one entry point trainers use: ``tiny`` is materialised under ``workspace_dir`` then loaded from
    disk like any other local model, so all modes (quantised included) see identical weights."""
    if source == TINY:
        return load_bundle(str(materialise_tiny(workspace_dir, seed)), **load_kwargs)
    return load_bundle(source, **load_kwargs)


def audio_encoder_fingerprint(model: ParlerTTSForConditionalGeneration) -> str:
    """sha256 over the codec's config and weights: codes cached with one codec are never reused with another."""
    h = hashlib.sha256(json.dumps(model.audio_encoder.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.audio_encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameters (4-bit weights count by their logical size)."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel() * (2 if p.__class__.__name__ == "Params4bit" else 1)
        total += n
        trainable += n if p.requires_grad else 0
    return {"trainable": trainable, "total": total}


def _from_hub(load: Any, name: str) -> Any:
    """``load(name)``; huggingface_hub's gated/missing/offline errors (OSErrors in transformers) become one that
    names the fix."""
    try:
        return load(name)
    except OSError as err:
        clear = explain_hub_error(name, err)
        if clear is None:
            raise
        raise clear from err


@dataclass(frozen=True)
class DecoderSize:
    """A fresh decoder's shape; the defaults are parler-tts-mini-v1's decoder (24 layers, width 1024, 16 heads)."""

    layers: int = 24
    hidden: int = 1024
    heads: int = 16
    ffn: int = 4096
    max_positions: int = 4096


def init_model(text_encoder: str, codec: str, tokenizer: str, out: str | Path, *, size: DecoderSize = DecoderSize(),
               seed: int = 0) -> Path:
    """A new Parler-TTS for a new prompt tokenizer, as upstream's dummy-model recipe builds one: the pretrained text
    encoder and codec (hub ids or folders) with a fresh random decoder whose heads cover the codec's codebooks and
    whose prompt embeddings cover ``tokenizer``'s vocabulary; saved atomically to ``out`` (loadable with
    ``from_pretrained`` and trainable by stage 02 as ``model = <out>``). The decoder's code vocabulary is the codebook
    size + 1 (pad/eos), not upstream's + 64: spare rows of a random head get sampled and the codec cannot decode them."""
    from parler_tts import ParlerTTSForCausalLM
    from transformers import AutoConfig

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already holds files: choose an empty or new --out folder")
    codec_config = _from_hub(AutoConfig.from_pretrained, codec)
    prompt_tok = _from_hub(AutoTokenizer.from_pretrained, tokenizer)
    description_tok = _from_hub(AutoTokenizer.from_pretrained, text_encoder)  # the text encoder's own tokenizer
    codes = int(codec_config.codebook_size)
    decoder_config = ParlerTTSDecoderConfig(
        vocab_size=codes + 1, max_position_embeddings=size.max_positions, num_hidden_layers=size.layers,
        ffn_dim=size.ffn, num_attention_heads=size.heads, hidden_size=size.hidden,
        num_codebooks=int(codec_config.num_codebooks), pad_token_id=codes, eos_token_id=codes, bos_token_id=codes + 1,
        decoder_start_token_id=codes + 1, dropout=0.0, tie_word_embeddings=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        decoder = ParlerTTSForCausalLM(decoder_config)
        model = ParlerTTSForConditionalGeneration.from_sub_models_pretrained(
            text_encoder_pretrained_model_name_or_path=text_encoder, audio_encoder_pretrained_model_name_or_path=codec,
            decoder_model=decoder, vocab_size=len(prompt_tok), pad_token_id=codes, decoder_start_token_id=codes + 1)
    model.generation_config = model.generation_config.from_model_config(model.config)
    _set_generation_defaults(model)
    # composing marks the decoder's attention as chosen ("eager"); unmarked, loading picks its default (sdpa)
    model.config.decoder._attn_implementation_autoset = False
    prompt_tok.padding_side, description_tok.padding_side = "left", "right"
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)  # a half-written earlier attempt
    recipe = {"text_encoder": text_encoder, "codec": codec, "tokenizer": tokenizer, "seed": seed,
              "decoder": vars(size), "prompt_vocab": len(prompt_tok), "codebooks": decoder_config.num_codebooks,
              "codebook_size": codes, "parameters": parameter_counts(model)["total"]}
    save_bundle(ParlerBundle(model, prompt_tok, description_tok, f"init:{Path(tokenizer).name}"), tmp,
                extra={"init": recipe})
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out
