"""Audio cleaning: load any wav/flac/mp3/ogg, mono, high-quality resampling (soxr), silence trimming with
silero-vad or an energy fallback, loudness normalisation (pyloudnorm, ITU-R BS.1770), clipping detection and
16-bit PCM output."""

from __future__ import annotations

import io
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

VAD_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 768000  # sample rates outside these come from a damaged header, not a recording
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


class AudioReadError(Exception):
    """The file exists but cannot be decoded."""


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a file to float32 samples shaped (frames, channels) and its rate.

    libsndfile reads wav/flac/ogg/mp3; anything else (or a file it rejects) is tried with ffmpeg if present.
    """
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data, sr
    except (sf.LibsndfileError, RuntimeError, TypeError) as first:
        try:
            return _load_ffmpeg(path)
        except (OSError, subprocess.CalledProcessError, sf.LibsndfileError, RuntimeError) as second:
            raise AudioReadError(f"{path}: cannot decode ({first}; ffmpeg: {second})") from first


def _load_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "wav", "-acodec",
                          "pcm_f32le", "-"], capture_output=True, check=True, timeout=120)
    data, sr = sf.read(io.BytesIO(out.stdout), dtype="float32", always_2d=True)
    return data, sr


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) or 1-D array into float32 mono."""
    data = np.asarray(data, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample mono float32 audio with soxr (``HQ``: 20-bit, linear phase; ``VHQ``: 28-bit)."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), sr_in, sr_out, quality=quality).astype(np.float32)


def clipped_fraction(data: np.ndarray, threshold: float = 0.999) -> float:
    """Share of samples at or beyond full scale that sit in runs of at least 2 (a clipped plateau)."""
    data = np.asarray(data, dtype=np.float32)
    if data.size == 0 or (data.max() < threshold and data.min() > -threshold):
        return 0.0
    hot = (np.abs(data) >= threshold).any(axis=-1) if data.ndim == 2 else np.abs(data) >= threshold
    if not hot.any():
        return 0.0
    runs = hot[1:] & hot[:-1]
    plateau = np.zeros_like(hot)
    plateau[1:] |= runs
    plateau[:-1] |= runs
    return float(plateau.sum() / max(len(hot), 1))


def frame_db(audio: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS level in dBFS of consecutive frames (no overlap)."""
    n = max(1, int(sr * frame_s))
    usable = len(audio) // n * n
    if usable == 0:
        return np.array([20 * np.log10(np.sqrt(np.mean(np.square(audio))) + 1e-10)]) if len(audio) else np.array([])
    frames = audio[:usable].reshape(-1, n)
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)


def energy_speech_mask(audio16k: np.ndarray, *, floor_db: float = -50.0, rel_db: float = 30.0,
                       frame_s: float = 0.02) -> np.ndarray:
    """Per-frame speech flags: frames within ``rel_db`` of the loudest frames and above ``floor_db``."""
    levels = frame_db(audio16k, VAD_RATE, frame_s)
    if len(levels) == 0:
        return np.zeros(0, dtype=bool)
    ref = np.percentile(levels, 95)
    return (levels > max(floor_db, ref - rel_db))


def silero_model_path() -> Path | None:
    """The silero-vad ONNX model shipped in the ``silero-vad`` wheel (found without importing torch)."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    return path if path.is_file() else None


def silero_available() -> bool:
    """Whether the silero-vad model and onnxruntime are installed (not on the parler stack)."""
    if silero_model_path() is None:
        return False
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


@lru_cache(maxsize=1)
def _silero_session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"])


def silero_speech_probs(audio16k: np.ndarray, *, segment_chunks: int = 32, warmup_chunks: int = 8) -> np.ndarray:
    """Speech probability per 32 ms chunk (512 samples at 16 kHz) from silero-vad's ONNX model, run
    directly with onnxruntime.

    The model is recurrent, so a long clip is cut into segments of ``segment_chunks`` that run side by side
    as one batch (one model call per chunk position instead of per chunk); each segment starts
    ``warmup_chunks`` early so its state has settled when its own chunks begin.
    """
    session = _silero_session()
    chunk, context = 512, 64
    n = int(np.ceil(len(audio16k) / chunk))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    x = np.zeros(context + (n + segment_chunks + warmup_chunks) * chunk, dtype=np.float32)
    x[context:context + len(audio16k)] = audio16k
    starts = np.arange(0, n, segment_chunks)
    first = np.maximum(starts - warmup_chunks, 0)  # chunk each segment's run begins at
    steps = segment_chunks + int(np.max(starts - first))
    state = np.zeros((2, len(starts), 128), dtype=np.float32)
    sr = np.array(VAD_RATE, dtype=np.int64)
    out = np.empty((len(starts), steps), dtype=np.float32)
    offsets = (first * chunk)[:, None] + np.arange(chunk + context)[None, :]
    for t in range(steps):
        prob, state = session.run(None, {"input": x[offsets + t * chunk], "state": state, "sr": sr})
        out[:, t] = prob[:, 0]
    probs = np.empty(n, dtype=np.float32)
    for b, (s, f) in enumerate(zip(starts, first, strict=True)):
        keep = min(segment_chunks, n - s)
        probs[s:s + keep] = out[b, s - f: s - f + keep]
    return probs


def _first_last_speech(probs: np.ndarray) -> tuple[int, int] | None:
    """First and last chunk of two or more consecutive chunks (64 ms) with speech probability > 0.5."""
    speech = probs > 0.5
    idx = np.flatnonzero(speech[:-1] & speech[1:])
    return (int(idx[0]), int(idx[-1]) + 1) if len(idx) else None


def _silero_bounds(audio16k: np.ndarray, edge_s: float = 0.75) -> tuple[int, int] | None:
    """Sample bounds of speech by silero-vad. Only the two edges matter for trimming, so silero runs on
    windows around the energy detector's first/last active frames; if either window holds no speech (the
    energy guess was wrong) it runs on the whole clip."""
    chunk = 512
    mask = energy_speech_mask(audio16k, frame_s=0.032, floor_db=-60.0, rel_db=40.0)
    active = np.flatnonzero(mask)
    edge = int(edge_s * VAD_RATE / chunk)
    n = int(np.ceil(len(audio16k) / chunk))
    if len(active) and n > 4 * edge:
        a0, a1 = max(0, active[0] - edge), min(n, active[0] + edge)
        b0, b1 = max(0, active[-1] - edge), min(n, active[-1] + 1 + edge)
        if a1 < b0:
            head = _first_last_speech(silero_speech_probs(audio16k[a0 * chunk: a1 * chunk]))
            tail = _first_last_speech(silero_speech_probs(audio16k[b0 * chunk: b1 * chunk]))
            start_ok = head is not None and (head[0] > 0 or a0 == 0)
            end_ok = tail is not None and (b0 + tail[1] + 1 < b1 or b1 == n)
            if start_ok and end_ok:
                return (a0 + head[0]) * chunk, (b0 + tail[1] + 1) * chunk
    found = _first_last_speech(silero_speech_probs(audio16k))
    return None if found is None else (found[0] * chunk, (found[1] + 1) * chunk)


def speech_bounds(audio: np.ndarray, sr: int, *, method: str = "auto", pad_s: float = 0.1,
                  audio16k: np.ndarray | None = None) -> tuple[int, int, str]:
    """(start, end) sample indices of the speech in ``audio`` (padded by ``pad_s``) and the method used.

    ``method``: "silero", "energy" or "auto" (silero when installed, otherwise energy). (0, 0) means no speech.
    """
    if audio16k is None:
        audio16k = resample(audio, sr, VAD_RATE)
    if method == "auto":
        method = "silero" if silero_available() else "energy"
    if method == "silero":
        bounds = _silero_bounds(audio16k)
        if bounds is None:
            return 0, 0, method
        start16, end16 = bounds
    elif method == "energy":
        frame_s = 0.02
        mask = energy_speech_mask(audio16k, frame_s=frame_s)
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return 0, 0, method
        hop = int(VAD_RATE * frame_s)
        start16, end16 = idx[0] * hop, (idx[-1] + 1) * hop
    else:
        raise ValueError(f"vad method must be 'silero', 'energy' or 'auto', got {method!r}")
    scale = sr / VAD_RATE
    pad = int(pad_s * sr)
    return max(0, int(start16 * scale) - pad), min(len(audio), int(end16 * scale) + pad), method


def loudness(audio: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (-inf for silence; clips shorter than one 400 ms block are padded)."""
    import pyloudnorm as pyln

    block = 0.4
    if len(audio) < int(block * sr) + 1:
        audio = np.pad(audio, (0, int(block * sr) + 1 - len(audio)))
    return float(pyln.Meter(sr, block_size=block).integrated_loudness(audio.astype(np.float64)))


def normalize_loudness(audio: np.ndarray, sr: int, target_lufs: float, *, peak_ceiling_db: float = -1.0
                       ) -> tuple[np.ndarray, float, float]:
    """Scale to ``target_lufs``; if that would push peaks above ``peak_ceiling_db`` the gain is lowered.

    Returns (audio, measured LUFS before, gain in dB applied).
    """
    before = loudness(audio, sr)
    if not np.isfinite(before):
        return audio, before, 0.0
    gain_db = target_lufs - before
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0:
        gain_db = min(gain_db, peak_ceiling_db - 20 * np.log10(peak))
    return (audio * 10 ** (gain_db / 20)).astype(np.float32), before, float(gain_db)


def write_pcm16(path: str | os.PathLike, audio: np.ndarray, sr: int) -> None:
    """Write mono 16-bit PCM WAV atomically (encoded in memory, written under a temporary name, renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
