"""One synthesis API for Parler-TTS models (hub models, stage-02 exports, stage-03 students), with the fast paths
as settings. Each path that cannot apply where the model runs falls back and says why (``ParlerSynth.report``).

Fast paths:
- **voice presets**: the description encoder's output depends only on the description, so it is computed once per
  (model, description), kept in memory and on disk, and handed to ``generate`` as ``encoder_outputs``; with
  ``drop_text_encoder`` the encoder's weights are then freed (its parameters and bytes are reported);
- **batching**: texts sorted by prompt length and generated ``batch_size`` at a time (prompts left-padded), each
  output trimmed to its own length;
- **fp16** weights on CUDA (presets are computed in fp32 first: T5 overflows in fp16);
- **int8**: dynamic int8 Linear layers in the decoder (a CPU path);
- **compile**: static KV cache + ``torch.compile(mode="reduce-overhead")``, prompts padded to length buckets so a
  compiled graph is reused (a CUDA path: it relies on CUDA graphs);
- **streaming**: audio chunks while generating (``parler_tts.ParlerTTSStreamer``), time to first audio measured.
Attention (SDPA or eager) is chosen when a model is loaded: ``load_bundle(..., attn_implementation=...)``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from .model import ParlerBundle

PRESET_VERSION = 1
BUCKET = 32  # compiled paths pad prompts to a multiple of this many tokens


@dataclass(frozen=True)
class SynthSettings:
    """Which fast paths to use; every default is safe on CPU and GPU."""

    presets: bool = True
    drop_text_encoder: bool = False
    batch_size: int = 1
    dtype: str = "auto"  # auto: float16 on CUDA, float32 on CPU; or float32 / float16
    int8_decoder: bool = False
    compile: bool = False
    threads: int = 0  # CPU intra-op threads; 0 keeps torch's choice


def fastest_settings(device: str | torch.device) -> SynthSettings:
    """The fastest path verified by ``benchmarks/synthesis.py`` (docs/benchmarks.md) where the model runs: on CPU
    presets + int8 decoder (1.99x the eager path for the Indic-sized student, batch 1: batching does not pay on CPU);
    on CUDA presets + fp16 (compile and batch sizes are not yet measured on a GPU, so they stay off)."""
    if torch.device(device).type == "cuda":
        return SynthSettings(presets=True, dtype="float16")
    return SynthSettings(presets=True, int8_decoder=True)


def describe(report: dict[str, Any]) -> str:
    """One line naming the path a synthesiser used (what notebooks print under a clip)."""
    s = report["settings"]
    parts = [report["device"], report["dtype"], f"{report['attention']} attention",
             "voice presets" if s["presets"] else "no presets"]
    if s["int8_decoder"] and "int8_decoder" not in report["fallbacks"]:
        parts.append("int8 decoder")
    if s["compile"] and "compile" not in report["fallbacks"]:
        parts.append("static cache + torch.compile")
    if s["batch_size"] > 1:
        parts.append(f"batch {s['batch_size']}")
    return ", ".join(parts)


@dataclass
class Preset:
    """A description's encoder output (already projected to the decoder's width and masked) and its mask."""

    hidden: torch.Tensor
    mask: torch.Tensor


def shortest_seconds(texts: list[str], max_chars_per_second: float) -> float:
    """The shortest duration the longest of ``texts`` can plausibly be spoken in: its characters over the fastest
    speaking rate (``sample_max_chars_per_second``); 0 when the rate is 0 (no floor)."""
    return max(len(t) for t in texts) / max_chars_per_second if max_chars_per_second > 0 and texts else 0.0


def length_kwargs(bundle: ParlerBundle, *, max_seconds: float, min_seconds: float = 0.0,
                  frames: int | None = None) -> dict[str, int]:
    """``generate``'s length arguments: exactly ``frames`` audio frames (equal work when comparing models), else at
    most ``max_seconds`` and at least ``min_seconds`` of audio (an end-of-speech token before then is suppressed,
    so a model that stops at once, as random or barely trained weights do, still says something)."""
    k = bundle.num_codebooks
    if frames is not None:
        return {"min_new_tokens": frames + k - 1, "max_new_tokens": frames + k - 1}
    longest = max(2 * k, int(max_seconds * bundle.frame_rate))
    floor = int(min(min_seconds, max_seconds) * bundle.frame_rate)
    return {"max_length": longest, **({"min_new_tokens": min(floor + k - 1, longest - 1)} if floor > 0 else {})}


def text_encoder_fingerprint(model: torch.nn.Module) -> str:
    """A short digest of the description encoder (config and a sample of its weights), naming its presets."""
    h = hashlib.sha256(model.text_encoder.config.to_json_string().encode())
    params = list(model.text_encoder.parameters())
    for p in (params[0], params[len(params) // 2], params[-1]):
        h.update(p.detach().float().cpu().numpy().tobytes()[:1 << 16])
    proj = getattr(model, "enc_to_dec_proj", None)
    if proj is not None:
        h.update(proj.weight.detach().float().cpu().numpy().tobytes()[:1 << 16])
    return h.hexdigest()[:16]


class ParlerSynth:
    """Speaks texts with one Parler-TTS model. It takes over ``bundle.model`` (moves it to ``device``, may convert
    its dtype, quantise its decoder or free its description encoder)."""

    def __init__(self, bundle: ParlerBundle, settings: SynthSettings = SynthSettings(), *,
                 device: str | torch.device | None = None, preset_dir: str | os.PathLike | None = None):
        self.bundle, self.settings = bundle, settings
        self.model = bundle.model.eval()
        self.device = torch.device(device) if device is not None else next(self.model.decoder.parameters()).device
        quantised = getattr(self.model, "hf_quantizer", None) is not None  # bitsandbytes: placed and typed at load
        if not quantised:
            self.model.to(self.device)
        self.preset_dir = Path(preset_dir) if preset_dir else None
        self.fingerprint = text_encoder_fingerprint(self.model)
        self.fallbacks: dict[str, str] = {}
        self.freed: dict[str, int] = {}
        self.compile_seconds: float | None = None
        self._presets: dict[str, Preset] = {}
        self._encoder_dropped = False
        cuda = self.device.type == "cuda"
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        self.dtype = {"auto": torch.float16 if cuda else torch.float32, "float32": torch.float32,
                      "float16": torch.float16}[settings.dtype]
        if self.dtype == torch.float16 and not cuda:
            self.fallbacks["float16"] = "fp16 weights are a GPU path (slow or unsupported on CPU): float32 used"
            self.dtype = torch.float32
        if quantised:
            self.fallbacks["dtype"] = "bitsandbytes copy: its quantised layers compute in float16, the rest run in " \
                                      "float32 as loaded"
            self.dtype = torch.float32
        elif self.dtype == torch.float16:
            self.model.half()
            if settings.presets:  # presets are computed by the fp32 encoder, then cast
                self.model.text_encoder.float()
                if getattr(self.model, "enc_to_dec_proj", None) is not None:
                    self.model.enc_to_dec_proj.float()
        if settings.int8_decoder:
            if cuda:
                self.fallbacks["int8_decoder"] = "dynamic int8 quantisation runs on CPU only: the decoder stays " \
                                                 f"{str(self.dtype).removeprefix('torch.')}"
            else:
                torch.ao.quantization.quantize_dynamic(self.model.decoder, {torch.nn.Linear}, dtype=torch.qint8,
                                                       inplace=True)
        if settings.compile:
            if quantised:
                self.fallbacks["compile"] = "not compiled: bitsandbytes layers are not verified under torch.compile"
            elif not cuda:
                self.fallbacks["compile"] = "torch.compile reduce-overhead relies on CUDA graphs: eager decoding on CPU"
            else:
                self.model.generation_config.cache_implementation = "static"
                self.model.forward = torch.compile(self.model.forward, mode="reduce-overhead")
        if settings.drop_text_encoder and not settings.presets:
            self.fallbacks["drop_text_encoder"] = "needs presets (the encoder is what speaks without them): kept"

    # ------------------------------------------------------------------------------------------------ presets
    def _preset_path(self, description: str) -> Path | None:
        if self.preset_dir is None:
            return None
        digest = hashlib.sha256(description.encode()).hexdigest()[:16]
        return self.preset_dir / self.fingerprint / f"{digest}.pt"

    @torch.no_grad()
    def preset(self, description: str) -> Preset:
        """The description's encoder output: from memory, from disk, or computed once (and saved atomically)."""
        if description in self._presets:
            return self._presets[description]
        path = self._preset_path(description)
        if path is not None and path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("version") == PRESET_VERSION and saved.get("description") == description:
                preset = Preset(saved["hidden"].to(self.device), saved["mask"].to(self.device))
                self._presets[description] = preset
                return preset
        if self._encoder_dropped:
            raise RuntimeError(f"no preset for the description {description[:60]!r}... and the description encoder "
                               "was dropped (drop_text_encoder): preload every description first, or keep the encoder")
        model = self.model
        desc = self.bundle.description_tokenizer([description], return_tensors="pt").to(self.device)
        hidden = model.text_encoder(input_ids=desc.input_ids, attention_mask=desc.attention_mask).last_hidden_state
        if (model.text_encoder.config.hidden_size != model.decoder.config.hidden_size
                and model.decoder.config.cross_attention_hidden_size is None):
            hidden = model.enc_to_dec_proj(hidden)  # as generate does before the decoder reads it
        hidden = (hidden * desc.attention_mask[..., None]).float()
        preset = Preset(hidden, desc.attention_mask)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            torch.save({"version": PRESET_VERSION, "description": description, "hidden": hidden.cpu(),
                        "mask": desc.attention_mask.cpu()}, tmp)
            tmp.replace(path)
        self._presets[description] = preset
        return preset

    def preload(self, descriptions: list[str]) -> None:
        """Make every preset now; with ``drop_text_encoder`` then free the description encoder's weights."""
        for d in descriptions:
            self.preset(d)
        if self.settings.drop_text_encoder and self.settings.presets and not self._encoder_dropped:
            params = list(self.model.text_encoder.parameters())
            self.freed = {"parameters": sum(p.numel() for p in params),
                          "bytes": sum(p.numel() * p.element_size() for p in params)}
            for p in params:
                p.data = torch.empty(0, dtype=p.dtype, device=p.device)
            self._encoder_dropped = True
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # --------------------------------------------------------------------------------------------- generation
    def _inputs(self, texts: list[str], description: str) -> dict[str, Any]:
        pad = {"pad_to_multiple_of": BUCKET} if self.settings.compile and self.device.type == "cuda" else {}
        prompt = self.bundle.prompt_tokenizer(texts, return_tensors="pt", padding=True, **pad).to(self.device)
        kwargs: dict[str, Any] = {"prompt_input_ids": prompt.input_ids, "prompt_attention_mask": prompt.attention_mask}
        if self.settings.presets:
            p = self.preset(description)
            n = len(texts)
            # a fresh BaseModelOutput per call: generate concatenates the prompt states into it in place
            kwargs["encoder_outputs"] = BaseModelOutput(
                last_hidden_state=p.hidden.to(self.model.decoder.dtype).expand(n, -1, -1).clone())
            kwargs["attention_mask"] = p.mask.expand(n, -1).clone()
        else:
            desc = self.bundle.description_tokenizer([description] * len(texts), return_tensors="pt",
                                                     padding=True).to(self.device)
            kwargs["input_ids"], kwargs["attention_mask"] = desc.input_ids, desc.attention_mask
        return kwargs

    @torch.no_grad()
    def synthesize(self, texts: list[str], description: str, *, seed: int = 0, frames: int | None = None,
                   max_seconds: float = 10.0, min_seconds: float = 0.0, do_sample: bool = True) -> list[np.ndarray]:
        """Speak every text with one description; returns one float32 waveform per text, in the given order
        (at least ``min_seconds`` each, see :func:`length_kwargs`).
        Sampling is seeded per batch (``seed`` + the batch's first text index), so at batch size 1 text ``i``
        gets ``seed + i`` whatever the order, and a run is reproducible at a fixed batch size."""
        order = sorted(range(len(texts)), key=lambda i: len(self.bundle.prompt_tokenizer(texts[i]).input_ids))
        size = max(1, int(self.settings.batch_size))
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), size):
            idx = order[start:start + size]
            kwargs = self._inputs([texts[i] for i in idx], description)
            torch.manual_seed(seed + min(idx))
            started = time.perf_counter()
            length = length_kwargs(self.bundle, frames=frames, max_seconds=max_seconds, min_seconds=min_seconds)
            result = self.model.generate(**kwargs, **length, do_sample=do_sample, return_dict_in_generate=True)
            if self.settings.compile and self.compile_seconds is None and "compile" not in self.fallbacks:
                self.compile_seconds = time.perf_counter() - started  # the first call compiles
            audio = result.sequences.float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = audio[row, :int(result.audios_length[row])].reshape(-1)
        return [a for a in out if a is not None]

    def stream(self, text: str, description: str, *, seed: int = 0, chunk_seconds: float = 0.5,
               max_seconds: float = 10.0, min_seconds: float = 0.0) -> Iterator[np.ndarray]:
        """Audio chunks of one text as they are generated (about ``chunk_seconds`` each, the first one sooner
        after the codebook delay); concatenated they are the whole utterance (at least ``min_seconds``, as
        :meth:`synthesize`)."""
        from parler_tts import ParlerTTSStreamer

        play_steps = max(self.bundle.num_codebooks + 1, int(chunk_seconds * self.bundle.frame_rate))
        streamer = ParlerTTSStreamer(self.model, device=self.device, play_steps=play_steps)
        kwargs = self._inputs([text], description)
        length = length_kwargs(self.bundle, max_seconds=max_seconds, min_seconds=min_seconds)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                torch.manual_seed(seed)
                with torch.no_grad():
                    self.model.generate(**kwargs, **length, do_sample=True, streamer=streamer)
            except BaseException as err:  # noqa: BLE001 - re-raised in the consumer below
                failure.append(err)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        ended = False
        try:
            for chunk in streamer:
                if chunk.size:
                    yield chunk
            ended = True
        finally:  # a consumer that stops early: let generation finish (bounded by max_seconds), never orphan it
            if not ended:
                for _ in streamer:
                    pass
            thread.join()
        if failure:
            raise failure[0]

    def report(self) -> dict[str, Any]:
        """What this synthesiser does: settings, the paths that fell back and why, what presets freed."""
        return {"settings": asdict(self.settings), "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."),
                "attention": self.model.config.decoder._attn_implementation, "fallbacks": dict(self.fallbacks),
                "presets_cached": len(self._presets), "text_encoder_freed": dict(self.freed),
                "compile_seconds": self.compile_seconds}
