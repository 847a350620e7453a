"""One synthesis API for stage 04's VITS: :class:`VitsSynth` speaks a list of texts in batches (texts sorted by
length, padded, one forward pass per batch) through PyTorch or ONNX Runtime (fp32 or the int8 model), each clip
trimmed to its own length; :meth:`VitsSynth.from_bundle` takes the fastest backend whose check passed when the bundle
was published (``export.fastest_backend``) and :meth:`VitsSynth.describe` names the path it used.

Per-item lengths: PyTorch returns each item's frame count (``y_mask``); coqui's ONNX graph returns only the padded
waveform, so its rounded durations (the graph's single ``Ceil``) are exposed as a second output in a derived copy
of the model (cached by content hash, the computation unchanged). Batched audio equals one-at-a-time audio except
the last few milliseconds of the shorter items (the decoder's convolutions there read the batch's padding)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import SAMPLE_RATE, load_coqui_config, tokenizer_and_scales
from .export import fastest_backend, fold_weight_norm, load_model, onnx_file

# Texts per forward pass when none is given: batching did not pay on CPU for any backend (batch 4 and 16 were as
# fast or slower than batch 1: benchmarks/synthesis.py --family vits, docs/benchmarks.md "VITS batch synthesis");
# on a GPU it is not measured yet, so a larger default is not claimed there either.
DEFAULT_BATCH = 1
DURATIONS = "durations"  # the derived ONNX model's extra output: rounded frames per input symbol

# (ids [B, T] int64, lengths [B] int64, deterministic) -> (audio [B, samples] float32, frames [B])
Runner = Callable[[np.ndarray, np.ndarray, bool], tuple[np.ndarray, np.ndarray]]


def split_sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end (Bangla dari ``।``, ``?``, ``!``, ``.``), so a paragraph is spoken as one
    clip per sentence (VITS was trained on sentence-length utterances)."""
    return [s for s in re.split(r"(?<=[।?!.])\s+", text.strip()) if s]


def pad_batch(id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists as one zero-padded int64 matrix and their lengths (the models' ``input``/``input_lengths``)."""
    lengths = np.array([len(ids) for ids in id_lists], dtype=np.int64)
    ids = np.zeros((len(id_lists), int(lengths.max())), dtype=np.int64)
    for row, seq in enumerate(id_lists):
        ids[row, :len(seq)] = seq
    return ids, lengths


def trim_batch(audio: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Each item's own waveform from a padded batch: ``frames`` (decoder frames per item) times the samples per
    frame, which is the padded length over the longest item's frames."""
    audio = audio.reshape(audio.shape[0], -1)
    per_frame = audio.shape[1] / max(float(frames.max()), 1.0)
    return [audio[row, :min(audio.shape[1], int(round(float(f) * per_frame)))].astype(np.float32, copy=True)
            for row, f in enumerate(frames)]


def torch_runner(model: Any) -> Runner:
    """A batch runner for a coqui ``Vits`` in eval mode (on its own device and dtype)."""
    import torch

    def run(ids: np.ndarray, lengths: np.ndarray, deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
        device = next(model.parameters()).device
        saved = model.inference_noise_scale, model.inference_noise_scale_dp
        if deterministic:
            model.inference_noise_scale = model.inference_noise_scale_dp = 0.0
        try:
            with torch.inference_mode():
                out = model.inference(torch.from_numpy(ids).to(device),
                                      aux_input={"x_lengths": torch.from_numpy(lengths).to(device)})
        finally:
            model.inference_noise_scale, model.inference_noise_scale_dp = saved
        frames = out["y_mask"].sum(dim=(1, 2)).float().cpu().numpy()
        return out["model_outputs"][:, 0].float().cpu().numpy(), frames

    return run


def expose_durations(src: Path, out: Path) -> None:
    """Write ``src`` (coqui's VITS ONNX export) to ``out`` with the rounded durations as a second output, from
    which each item's length in a batch follows."""
    import onnx

    model = onnx.load(str(src))
    ceils = [n for n in model.graph.node if n.op_type == "Ceil"]
    if len(ceils) != 1:
        raise ValueError(f"{src}: expected one Ceil node (VITS's rounded durations), found {len(ceils)}; this is not "
                         "coqui's VITS export, so batch items cannot be trimmed: use batch_size=1")
    model.graph.node.append(onnx.helper.make_node("Identity", [ceils[0].output[0]], [DURATIONS]))
    model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(out))


def onnx_runner(path: str | Path, config: Any, provider: str = "CPUExecutionProvider",
                threads: int | None = None) -> Runner:
    """A batch runner for a VITS ONNX model (fp32 or int8) on one execution provider; the model with its durations
    exposed is derived once per source file (``nbhelpers.measure.ort.derived_model``)."""
    from ..measure.ort import cache_dir, derived_model, ort_session

    session = ort_session(derived_model(Path(path), cache_dir(), "durations", expose_durations), provider, threads)
    _, (noise, length, noise_dp) = tokenizer_and_scales(config)

    def run(ids: np.ndarray, lengths: np.ndarray, deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
        scales = np.array([0.0 if deterministic else noise, length, 0.0 if deterministic else noise_dp], np.float32)
        audio, durations = session.run(["output", DURATIONS], {"input": ids, "input_lengths": lengths,
                                                               "scales": scales})
        return audio[:, 0], np.maximum(durations.reshape(len(ids), -1).sum(axis=1), 1.0)

    return run


class VitsSynth:
    """Speaks texts with one VITS backend, ``batch_size`` texts per forward pass."""

    def __init__(self, runner: Runner, tokenizer: Any, *, backend: str, why: str = "", batch_size: int | None = None,
                 device: str = "cpu"):
        self.runner, self.tokenizer, self.backend, self.why, self.device = runner, tokenizer, backend, why, device
        self.batch_size = int(batch_size or DEFAULT_BATCH)
        self.sample_rate = SAMPLE_RATE

    @classmethod
    def from_torch(cls, model: Any, *, backend: str = "torch", why: str = "", batch_size: int | None = None
                   ) -> VitsSynth:
        """A loaded ``Vits`` (weight norm folded for speed, on the device and dtype it should run with)."""
        device = str(next(model.parameters()).device)
        return cls(torch_runner(model), model.tokenizer, backend=backend, why=why, batch_size=batch_size,
                   device=device)

    @classmethod
    def from_onnx(cls, path: str | Path, config: Any, *, provider: str = "CPUExecutionProvider",
                  threads: int | None = None, backend: str = "onnx", why: str = "", batch_size: int | None = None
                  ) -> VitsSynth:
        """An exported ONNX model (``model.onnx`` or ``model.int8.onnx``) with its coqui config."""
        from ..measure.ort import PROVIDER_DEVICE

        tokenizer, _ = tokenizer_and_scales(config)
        return cls(onnx_runner(path, config, provider, threads), tokenizer, backend=backend, why=why,
                   batch_size=batch_size, device=PROVIDER_DEVICE.get(provider, "cpu"))

    @classmethod
    def from_bundle(cls, bundle: str | Path, backend: str = "auto", *, records: Sequence[dict[str, Any]] = (),
                    batch_size: int | None = None, threads: int | None = None) -> VitsSynth:
        """A published bundle on CPU: ``auto`` takes the fastest backend verified when it was published (stage 04's
        record among ``records``), else ``torch`` | ``onnx`` | ``onnx-int8``."""
        bundle = Path(bundle)
        backend, why = (fastest_backend(bundle, list(records)) if backend == "auto"
                        else (backend, "chosen with --backend"))
        if backend == "torch":
            model = fold_weight_norm(load_model(bundle / "model.pth", bundle / "config.json"))
            return cls.from_torch(model, why=why, batch_size=batch_size)
        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"unknown VITS backend {backend!r}: use auto, torch, onnx or onnx-int8")
        path = onnx_file(bundle, "int8" if backend == "onnx-int8" else "fp32")
        return cls.from_onnx(path, load_coqui_config(bundle / "config.json"), threads=threads, backend=backend,
                             why=why, batch_size=batch_size)

    def synthesize(self, texts: Sequence[str], *, deterministic: bool = False) -> list[np.ndarray]:
        """One float32 waveform per text, in the given order; texts of similar length share a batch (less
        padding). ``deterministic`` zeroes the noise scales (comparing backends)."""
        from tqdm.auto import tqdm

        ids = [self.tokenizer.text_to_ids(t) for t in texts]
        nothing = self.tokenizer.text_to_ids("")
        silent = [f"{i}: {t[:40]!r}" for i, (t, seq) in enumerate(zip(texts, ids, strict=True)) if seq == nothing]
        if silent:
            raise ValueError(f"no symbol the model knows in text(s) {', '.join(silent)} (its characters are not in "
                             "the model's character set, nbhelpers.vits.config): remove them or write them in Bangla")
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        starts = range(0, len(order), self.batch_size)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(texts)
        for start in tqdm(starts, desc=f"VITS ({self.backend}, batch {self.batch_size})", unit="batch",
                          disable=len(starts) < 2, leave=False):
            idx = order[start:start + self.batch_size]
            batch, lengths = pad_batch([ids[i] for i in idx])
            for i, audio in zip(idx, trim_batch(*self.runner(batch, lengths, deterministic)), strict=True):
                out[i] = audio
        return out

    def describe(self) -> str:
        """One line naming the path (what the CLI and notebooks print under a clip)."""
        why = f": {self.why}" if self.why else ""
        return f"{self.backend} on {self.device}, batch {self.batch_size}{why}"

    def report(self) -> dict[str, Any]:
        """The path as data, for stage records."""
        return {"backend": self.backend, "device": self.device, "batch_size": self.batch_size, "why": self.why}
