"""int8 variant of an exported VITS for ONNX Runtime on CPU: static QDQ quantisation (int8 per-channel weights,
uint8 activations calibrated on real synthesis inputs) of the waveform decoder's convolutions, which hold ~90% of
the CPU time, and a spectral check of its audio against the fp32 model. Works on coqui's ``Vits.export_onnx`` graphs
and on Piper voices (same VITS generator, exported by Piper)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Node-name prefixes of the HiFi-GAN decoder: coqui's Vits export, Piper's export.
DECODER_PREFIXES = ("/waveform_decoder/", "/dec/")
# The last convolution writes the waveform (before tanh): 8-bit output levels would add audible hiss, keep it fp32.
KEEP_FP32 = ("conv_post/",)
# Calibration text, distinct from the test sentences (config.TEST_SENTENCES) the int8 model is checked on.
CALIBRATION_SENTENCES = (
    "আমি প্রতিদিন সকালে বাজারে যাই এবং তাজা সবজি কিনি।",
    "তুমি কি আগামীকাল বিকেলে আমাদের বাড়িতে আসবে?",
    "নদীর ধারে ছোট্ট একটি গ্রাম, সেখানে কৃষকেরা ধান চাষ করেন।",
    "বৃষ্টির দিনে খিচুড়ি আর ইলিশ মাছ ভাজা খেতে খুব ভালো লাগে।",
    "শিক্ষক ক্লাসে ঢুকে সবাইকে শুভ সকাল বললেন।",
    "দয়া করে দরজাটা বন্ধ করে দিন, বাইরে প্রচণ্ড ঠান্ডা।",
)


def decoder_convs(onnx_path: str | Path, prefixes: Sequence[str] = DECODER_PREFIXES,
                  keep_fp32: Sequence[str] = KEEP_FP32) -> list[str]:
    """Names of the decoder's Conv nodes to quantise (all but those matching ``keep_fp32``). The upsampling
    ConvTranspose layers stay fp32: ONNX Runtime has no integer kernel for them, so int8 weights would only be
    dequantised at every call (measured 8% slower in all)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    names = [n.name for n in graph.node if n.op_type == "Conv"
             and n.name.startswith(tuple(prefixes)) and not any(k in n.name for k in keep_fp32)]
    if not names:
        raise ValueError(f"{onnx_path}: no Conv node whose name starts with {list(prefixes)}. Fix: pass the "
                         "decoder's node-name prefix (see the graph in Netron) as `prefixes`.")
    return names


class _NoPreprocessHint(logging.Filter):
    """Drops onnxruntime's "consider pre-processing" hint: shape inference adds nothing for Conv with static weights."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the hint, True for everything else."""
        return "pre-processing" not in record.getMessage()


class _Feeds:
    """onnxruntime CalibrationDataReader over a list of input dicts, with a progress bar."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=len(feeds), desc="int8 calibration", unit="utterance")
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Next calibration input, None when done."""
        feed = next(self._it, None)
        self._bar.update(feed is not None)
        if feed is None:
            self._bar.close()
        return feed


def quantize_decoder(onnx_path: str | Path, out_path: str | Path, feeds: Iterable[dict[str, np.ndarray]], *,
                     prefixes: Sequence[str] = DECODER_PREFIXES, keep_fp32: Sequence[str] = KEEP_FP32) -> Path:
    """Write ``out_path``: ``onnx_path`` with the decoder convolutions in int8 QDQ form (ONNX Runtime runs them as
    QLinearConv with VNNI/AVX2 integer kernels). ``feeds`` are real synthesis inputs (normal noise scales) whose
    activation ranges (min/max: the histogram calibrators cannot take inputs of different lengths) set the scales."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    feeds = list(feeds)
    if not feeds:
        raise ValueError("no calibration inputs: pass at least one synthesis input (e.g. vits_feeds(...))")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_name(out_path.name + ".partial")
    hint = _NoPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_static(str(onnx_path), str(tmp_out), _Feeds(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], nodes_to_quantize=decoder_convs(onnx_path, prefixes, keep_fp32),
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, calibration_providers=["CPUExecutionProvider"])
    finally:
        logging.getLogger().removeFilter(hint)
    tmp_out.replace(out_path)  # never leave a half-written model under the final name
    return out_path


def vits_feeds(ids: Iterable[Sequence[int]], scales: Sequence[float]) -> list[dict[str, np.ndarray]]:
    """Inputs of a VITS ONNX graph (``input``, ``input_lengths``, ``scales``), one per token-id sequence."""
    feeds = []
    for seq in ids:
        arr = np.asarray(seq, dtype=np.int64)[None]
        feeds.append({"input": arr, "input_lengths": np.array([arr.shape[1]], np.int64),
                      "scales": np.asarray(scales, np.float32)})
    return feeds


def quantize_vits(onnx_path: str | Path, out_path: str | Path, config: Any,
                  texts: Sequence[str] = CALIBRATION_SENTENCES) -> Path:
    """int8 variant of a coqui VITS export, calibrated on ``texts`` through the model's own tokenizer with its
    normal inference noise (the activation ranges of real synthesis)."""
    from .config import tokenizer_and_scales

    tokenizer, scales = tokenizer_and_scales(config)
    return quantize_decoder(onnx_path, out_path, vits_feeds((tokenizer.text_to_ids(t) for t in texts), scales))


def spectral_distance(ref: np.ndarray, hyp: np.ndarray, n_fft: int = 1024, hop: int = 256) -> dict[str, float]:
    """How far ``hyp`` is from ``ref`` (same length, same rate) in the magnitude spectrogram: spectral convergence
    ||S_ref - S_hyp|| / ||S_ref|| and log-spectral distance in dB (RMS over bins, mean over frames)."""
    if ref.shape != hyp.shape:
        raise ValueError(f"audio lengths differ ({ref.shape} vs {hyp.shape}): compare with deterministic noise")
    window = np.hanning(n_fft).astype(np.float32)

    def mag(x: np.ndarray) -> np.ndarray:
        x = np.pad(x.astype(np.float32), (n_fft // 2, n_fft // 2))
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * window
        return np.abs(np.fft.rfft(frames, axis=-1))

    a, b = mag(ref), mag(hyp)
    convergence = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
    floor = 1e-3 * max(float(a.max()), 1e-12)  # 60 dB below the peak: near-silent bins do not dominate
    lsd = np.sqrt(np.mean((20 * np.log10(np.maximum(a, floor) / np.maximum(b, floor))) ** 2, axis=-1))
    return {"spectral_convergence": convergence, "log_spectral_distance_db": float(np.mean(lsd))}


def compare_int8(fp32: Any, int8: Any, texts: Sequence[str], max_convergence: float,
                 sr: int = 22050) -> dict[str, Any]:
    """Spectral distance of the int8 model's audio from the fp32 model's for the same texts, both with
    deterministic noise (``synthesize(text, deterministic=True)``): lengths must match and the worst spectral
    convergence must stay within ``max_convergence``. The pairs are time-aligned, so PESQ/STOI are reported too
    (``aligned``: :func:`nbhelpers.measure.quality.aligned_pairs_quality`)."""
    from ..measure.quality import aligned_pairs_quality

    rows, pairs = [], []
    for text in texts:
        a, b = fp32.synthesize(text, deterministic=True), int8.synthesize(text, deterministic=True)
        if a.shape != b.shape:
            return {"ok": False, "lengths_match": False, "sentences": len(texts), "max_convergence": max_convergence}
        rows.append(spectral_distance(a, b))
        pairs.append((a, b))
    worst = max(r["spectral_convergence"] for r in rows)
    return {"ok": worst <= max_convergence, "lengths_match": True, "sentences": len(texts),
            "max_convergence": max_convergence, "spectral_convergence_max": worst,
            "log_spectral_distance_db_mean": float(np.mean([r["log_spectral_distance_db"] for r in rows])),
            "aligned": aligned_pairs_quality(pairs, sr)}
