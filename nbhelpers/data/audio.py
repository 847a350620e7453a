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
    mono_abs = np.abs(np.asarray(data, dtype=np.float32)).max(axis=-1) if np.ndim(data) == 2 else np.abs(data)
    hot = mono_abs >= threshold
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


def silero_speech_probs(audio16k: np.ndarray) -> np.ndarray:
    """Speech probability per 32 ms chunk (512 samples at 16 kHz) from silero-vad's ONNX model, run
    directly with onnxruntime (the model is stateful: each chunk sees the previous 64 samples and state)."""
    session = _silero_session()
    chunk, context = 512, 64
    n = int(np.ceil(len(audio16k) / chunk))
    x = np.zeros(n * chunk + context, dtype=np.float32)
    x[context:context + len(audio16k)] = audio16k
    state = np.zeros((2, 1, 128), dtype=np.float32)
    sr = np.array(VAD_RATE, dtype=np.int64)
    probs = np.empty(n, dtype=np.float32)
    for i in range(n):
        window = x[i * chunk: i * chunk + chunk + context][None, :]
        out, state = session.run(None, {"input": window, "state": state, "sr": sr})
        probs[i] = out[0, 0]
    return probs


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
        speech = silero_speech_probs(audio16k) > 0.5
        speech = speech[:-1] & speech[1:]  # at least two chunks (64 ms) in a row
        idx = np.flatnonzero(speech)
        if len(idx) == 0:
            return 0, 0, method
        start16, end16 = idx[0] * 512, (idx[-1] + 2) * 512
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
    """Write mono 16-bit PCM WAV atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
