"""Quality metrics, offline by default: Whisper ASR (CER/WER; the PyPI Whisper base, or a larger model on GPU
profiles), DNSMOS (no-reference MOS estimate), mel-cepstral distortion with DTW, F0 RMSE and voicing error, and
PESQ/STOI for time-aligned (resynthesis) references."""

from __future__ import annotations

import os
import re
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np

from .asr import OFFLINE_BASE

# librosa (YIN, and speechmos's DNSMOS features) JIT-compiles with numba; a writable cache makes it one-off.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "tts-suite", "numba"))

ASR_SR = 16_000
FRAME_HOP_S = 0.005  # 5 ms frames for cepstra and F0, so both share one DTW path
N_MELS = 40
N_CEPS = 24  # c1..c24; c0 (energy) is left out, as usual for MCD
FLOOR_DB = 80.0
MCD_CONST = 10.0 / np.log(10.0) * np.sqrt(2.0)
DNSMOS_FIELDS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")  # the keys dnsmos() returns


def _mono16(audio: np.ndarray, sr: int, target: int = ASR_SR) -> np.ndarray:
    """Float32 mono at ``target`` Hz (soxr resampling), checked for shape and finiteness."""
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        raise ValueError(f"audio must be non-empty finite 1-D mono, got shape {audio.shape}")
    return soxr.resample(audio, sr, target).astype(np.float32) if sr != target else audio


@lru_cache(maxsize=2)
def _whisper(asr_model: str):
    from faster_whisper import WhisperModel

    from .asr import resolve  # the verified PyPI base, a local CTranslate2 folder, or a hub name

    spec = resolve(asr_model)
    return WhisperModel(spec.model, device=spec.device, compute_type=spec.compute_type,
                        cpu_threads=min(os.cpu_count() or 1, 8))


def asr_token_cap(text: str) -> int:
    """Whisper's token budget for one clip: room for a correct transcript of ``text`` (Indic letters take up to
    three byte-level tokens each), small enough to cut the loops Whisper falls into on noise-like audio."""
    return min(160, 3 * len(text) + 8)


def transcribe(audio: np.ndarray, sr: int, language: str, max_new_tokens: int = 160,
               asr_model: str = OFFLINE_BASE) -> str:
    """What Whisper (``asr_model``: see :func:`nbhelpers.measure.asr.resolve`; by default the offline base, int8 on
    CPU) hears in ``audio``, decoded greedily in ``language``; ``max_new_tokens`` caps the hallucination loops
    Whisper falls into on noise-like (untrained) audio."""
    segments, _ = _whisper(asr_model).transcribe(_mono16(audio, sr), language=language, beam_size=1,
                                                 vad_filter=False, condition_on_previous_text=False,
                                                 without_timestamps=True, max_new_tokens=max_new_tokens)
    return " ".join(s.text.strip() for s in segments).strip()


def normalise_text(text: str) -> str:
    """NFKC, lower case, punctuation and symbols (any script, incl. the danda) to spaces, whitespace collapsed:
    so that CER/WER count spelling, not punctuation. Combining vowel signs of Indic scripts are kept."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def _pair(ref: str, hyp: str) -> tuple[str, str]:
    ref, hyp = normalise_text(ref), normalise_text(hyp)
    if not ref:
        raise ValueError("reference text is empty after normalisation: CER/WER are undefined")
    return ref, hyp


def cer(ref: str, hyp: str) -> float:
    """Character error rate (jiwer) after :func:`normalise_text`; spaces count as characters."""
    import jiwer

    ref, hyp = _pair(ref, hyp)
    return float(jiwer.cer(ref, hyp)) if hyp else 1.0


def wer(ref: str, hyp: str) -> float:
    """Word error rate (jiwer) after :func:`normalise_text`."""
    import jiwer

    ref, hyp = _pair(ref, hyp)
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_mels, n_fft//2+1] triangular filters evenly spaced on the HTK mel scale (0 Hz to Nyquist)."""
    def to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(0.0, to_mel(sr / 2), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


def mel_cepstrum(audio: np.ndarray, sr: int, target_sr: int = ASR_SR) -> np.ndarray:
    """[frames, N_CEPS] mel cepstra (c1..c24 of the natural-log mel amplitude, floored 80 dB under the
    utterance peak) at 5 ms hops, 25 ms Hann windows; plain numpy so no JIT compilation delays the first call."""
    from scipy.fft import dct

    y = _mono16(audio, sr, target_sr)
    hop, win, n_fft = int(round(target_sr * FRAME_HOP_S)), int(0.025 * target_sr), 512
    y = np.pad(y, (win // 2, win // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(y, win)[::hop] * np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    mel = power @ _mel_filterbank(target_sr, n_fft, N_MELS).T
    floor = max(float(mel.max()), 1e-20) * 10 ** (-FLOOR_DB / 10)  # silence floored 80 dB under the peak
    log_amp = 0.5 * np.log(np.maximum(mel, floor))
    # DCT-II / (2 N) is the real cepstrum of the mel-warped log amplitude spectrum (the scale MCD assumes)
    return dct(log_amp, type=2, axis=1, norm=None)[:, 1 : N_CEPS + 1] / (2 * N_MELS)


def _dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Optimal monotone alignment of two [frames, dims] sequences (Euclidean cost, steps (1,1), (1,0), (0,1)),
    as [path_len, 2] index pairs. Each row of the accumulated cost is vectorised:
    D[i, j] = S[j] + min_{k<=j}(E[k] - S[k] + C[i, k]) with S the row's cost prefix sums."""
    from scipy.spatial.distance import cdist

    cost = cdist(a, b)
    n, m = cost.shape
    acc = np.empty_like(cost)
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        prev = acc[i - 1]
        enter = np.minimum(prev, np.concatenate(([np.inf], prev[:-1]))) + cost[i]
        prefix = np.cumsum(cost[i])
        acc[i] = prefix + np.minimum.accumulate(enter - prefix)
    i, j, path = n - 1, m - 1, [(n - 1, m - 1)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            step = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
            i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
        path.append((i, j))
    return np.array(path[::-1])


def mcd_dtw(ref: np.ndarray, sr_ref: int, hyp: np.ndarray, sr_hyp: int) -> float:
    """Mel-cepstral distortion in dB between two utterances after DTW alignment (mean over the path).
    MFCC-style cepstra (mel filterbank + DCT), not SPTK mcep: compare values within this suite only."""
    a, b = mel_cepstrum(ref, sr_ref), mel_cepstrum(hyp, sr_hyp)
    path = _dtw_path(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]
    return float(MCD_CONST * np.mean(np.sqrt(np.sum(diff**2, axis=1))))


def f0_track(audio: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 500.0,
             threshold: float = 0.15) -> np.ndarray:
    """F0 in Hz per 5 ms frame at 16 kHz, 0 where unvoiced: YIN (cumulative mean normalised difference, first
    dip under ``threshold``, parabolic refinement), vectorised over frames in numpy. A frame is voiced when its
    dip is under 0.3 and it is within 35 dB of the loudest frame."""
    y = _mono16(audio, sr).astype(np.float64)
    hop, win = int(round(ASR_SR * FRAME_HOP_S)), int(ASR_SR / fmin) + 1
    lo, hi = int(ASR_SR / fmax), int(ASR_SR / fmin)
    length = win + hi + 1
    y = np.pad(y, (win // 2, length))
    n_frames = 1 + (len(y) - length - win // 2 - length + win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(y, length)[::hop][: max(n_frames, 1)]
    n = 1 << int(np.ceil(np.log2(2 * length)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :win], n)) * np.fft.rfft(frames, n), n)[:, : hi + 2]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, win][:, None]
    e_tau = sq[:, win : win + hi + 2] - sq[:, : hi + 2]
    diff = np.maximum(e0 + e_tau - 2 * corr, 0.0)
    taus = np.arange(hi + 2)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    search = cmnd[:, lo : hi + 1]
    below = search < threshold
    tau = np.where(below.any(1), below.argmax(1), search.argmin(1))
    for _ in range(hi - lo):  # walk down to the bottom of the first dip
        step = (tau + 1 < search.shape[1]) & (search[np.arange(len(tau)), np.minimum(tau + 1, search.shape[1] - 1)]
                                              < search[np.arange(len(tau)), tau])
        if not step.any():
            break
        tau = tau + step
    rows, t = np.arange(len(tau)), tau + lo
    a, b, c = cmnd[rows, t - 1], cmnd[rows, t], cmnd[rows, np.minimum(t + 1, hi + 1)]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    f0 = ASR_SR / (t + np.clip(shift, -1, 1))
    energy_db = 10 * np.log10(e0[:, 0] / win + 1e-12)
    voiced = (b < 0.3) & (energy_db > energy_db.max() - 35.0)
    return np.where(voiced, f0, 0.0)


def f0_metrics(ref: np.ndarray, sr_ref: int, hyp: np.ndarray, sr_hyp: int) -> dict[str, float | None]:
    """F0 RMSE (Hz, frames voiced in both) and voicing error (share of aligned frames whose voiced/unvoiced
    decision differs), along the mel-cepstral DTW path. f0_rmse_hz is None when no frame is voiced in both."""
    a, b = mel_cepstrum(ref, sr_ref), mel_cepstrum(hyp, sr_hyp)
    fa, fb = f0_track(ref, sr_ref), f0_track(hyp, sr_hyp)
    n_a, n_b = min(len(a), len(fa)), min(len(b), len(fb))
    path = _dtw_path(a[:n_a], b[:n_b])
    x, y = fa[path[:, 0]], fb[path[:, 1]]
    va, vb = x > 0, y > 0
    both = va & vb
    rmse = float(np.sqrt(np.mean((x[both] - y[both]) ** 2))) if both.any() else None
    return {"f0_rmse_hz": rmse, "vuv_error": float(np.mean(va != vb))}


def time_aligned(ref: np.ndarray, sr_ref: int, hyp: np.ndarray, sr_hyp: int, tolerance_s: float = 0.02) -> bool:
    """True when both signals have the same duration within ``tolerance_s`` (a resynthesis of the reference)."""
    return abs(len(ref) / sr_ref - len(hyp) / sr_hyp) <= tolerance_s


def pesq_stoi(ref: np.ndarray, sr_ref: int, hyp: np.ndarray, sr_hyp: int) -> dict[str, float]:
    """Wide-band PESQ and STOI at 16 kHz. Only meaningful for a time-aligned reference (resynthesis); refuses
    otherwise instead of reporting a number of a misaligned comparison."""
    from pesq import pesq
    from pystoi import stoi

    if not time_aligned(ref, sr_ref, hyp, sr_hyp):
        raise ValueError(f"PESQ/STOI need a time-aligned reference: durations {len(ref) / sr_ref:.3f} s vs "
                         f"{len(hyp) / sr_hyp:.3f} s. Use mcd_dtw/f0_metrics for free synthesis.")
    a, b = _mono16(ref, sr_ref), _mono16(hyp, sr_hyp)
    n = min(len(a), len(b))
    return {"pesq_wb": float(pesq(ASR_SR, a[:n], b[:n], "wb")), "stoi": float(stoi(a[:n], b[:n], ASR_SR))}


def aligned_pairs_quality(pairs: list[tuple[np.ndarray, np.ndarray]], sr: int) -> dict[str, Any]:
    """Mean wide-band PESQ and STOI over time-aligned (reference, degraded) pairs of one model's two variants with
    the same seed and noise (int8 vs fp32, ONNX vs PyTorch): ``pesq_wb_mean``, ``stoi_mean``, ``pairs``; or
    ``not_available`` with the reason when no pair can be scored (lengths differ, or PESQ finds no speech in a
    random-weight model's output)."""
    rows, reasons = [], []
    for ref, hyp in pairs:
        try:
            rows.append(pesq_stoi(ref, sr, hyp, sr))
        except Exception as err:  # pesq raises its own NoUtterancesError / BufferTooShortError
            reasons.append(f"{type(err).__name__}: {str(err)[:120]}")
    if not rows:
        return {"not_available": "; ".join(sorted(set(reasons))) or "no pairs"}
    return {"pesq_wb_mean": float(np.mean([r["pesq_wb"] for r in rows])),
            "stoi_mean": float(np.mean([r["stoi"] for r in rows])), "pairs": len(rows), "unscored": len(reasons)}


def dnsmos(audio: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS P.835 (overall, signal, background) and P.808 MOS estimates from speechmos's bundled ONNX models.
    A no-reference estimate for noisy/enhanced speech, not a listening test: compare systems, not absolutes."""
    from speechmos import dnsmos as _dnsmos

    y = np.clip(_mono16(audio, sr), -1.0, 1.0)
    out = _dnsmos.run(y, sr=ASR_SR)
    return {"dnsmos_ovrl": float(out["ovrl_mos"]), "dnsmos_sig": float(out["sig_mos"]),
            "dnsmos_bak": float(out["bak_mos"]), "dnsmos_p808": float(out["p808_mos"])}
