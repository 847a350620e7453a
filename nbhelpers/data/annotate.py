"""DataSpeech-compatible utterance annotations computed offline: pitch mean/std (a YIN-style tracker),
speaking rate (syllables per second), an SNR estimate and a reverberation (C50) estimate from the speech's
free decay; then DataSpeech's seven text bins per attribute and a templated ``text_description``."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .audio import VAD_RATE, frame_db
from .text import syllable_count

# DataSpeech's bin names (v02), lowest value first.
SPEAKING_RATE_BINS = ["very slowly", "quite slowly", "fairly slowly", "moderate speed", "fairly fast", "quite fast",
                      "very fast"]
SNR_BINS = ["very noisy", "quite noisy", "fairly noisy", "moderate ambient sound", "fairly quiet", "quite quiet",
            "very quiet"]
REVERBERATION_BINS = ["very roomy sounding", "quite roomy sounding", "fairly roomy sounding", "moderate reverberation",
                      "fairly confined sounding", "quite confined sounding", "very confined sounding"]
MONOTONY_BINS = ["very monotone", "quite monotone", "fairly monotone", "moderate intonation", "fairly expressive",
                 "quite expressive", "very expressive"]
PITCH_BINS = ["very low-pitch", "quite low-pitch", "fairly low-pitch", "moderate pitch", "fairly high-pitch",
              "quite high-pitch", "very high-pitch"]

# Six edges -> seven bins. Absolute edges so a value means the same thing in every dataset; override them in
# the profile (``bin_edges``) to match another corpus' distribution.
DEFAULT_EDGES: dict[str, list[float]] = {
    "speaking_rate": [2.5, 3.5, 4.5, 5.5, 6.5, 7.5],  # syllables per second
    "snr": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],  # dB
    "c50": [0.0, 10.0, 20.0, 30.0, 40.0, 50.0],  # dB
    "utterance_pitch_std": [8.0, 14.0, 20.0, 28.0, 36.0, 46.0],  # Hz
    "pitch_male": [85.0, 100.0, 112.0, 125.0, 140.0, 160.0],  # speaker mean Hz
    "pitch_female": [160.0, 180.0, 198.0, 215.0, 235.0, 260.0],
    "pitch_unknown": [90.0, 120.0, 150.0, 180.0, 210.0, 240.0],
}

TEMPLATES = [
    "{who} speaks {speed} with {pitch} and {monotony}; the recording {reverb} and {noise}.",
    "{who} talks {speed}, using {pitch} with {monotony}. The recording {reverb} and {noise}.",
    "With {pitch}, {who} speaks {speed} and with {monotony}; the audio {reverb} and {noise}.",
    "The recording {reverb} and {noise}: {who} speaks {speed} with {pitch} and {monotony}.",
]


def pitch_track(audio16k: np.ndarray, *, fmin: float = 60.0, fmax: float = 420.0, threshold: float = 0.15,
                hop_s: float = 0.01, win_s: float = 0.025) -> np.ndarray:
    """F0 in Hz per 10 ms frame (NaN where unvoiced) with the cumulative-mean-normalised difference function."""
    sr = VAD_RATE
    tau_min, tau_max = int(sr / fmax), int(sr / fmin)
    w, hop = int(win_s * sr), int(hop_s * sr)
    length = w + tau_max
    if len(audio16k) < length:
        return np.full(0, np.nan)
    n = 1 + (len(audio16k) - length) // hop
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    frames = audio16k[idx].astype(np.float64)
    nfft = 1 << int(np.ceil(np.log2(length + w)))
    spec_full = np.fft.rfft(frames, nfft)
    spec_head = np.fft.rfft(frames[:, :w], nfft)
    acf = np.fft.irfft(np.conj(spec_head) * spec_full, nfft)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((n, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, w]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + w] - sq[:, taus]
    diff = np.maximum(e0[:, None] + e_tau - 2 * acf, 0.0)
    cum = np.cumsum(diff[:, 1:], axis=1)
    cmndf = np.ones_like(diff)
    cmndf[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    search = cmndf[:, tau_min:]
    below = search < threshold
    voiced = below.any(axis=1)
    best = np.argmax(below, axis=1)
    rows = np.arange(n)
    for _ in range(tau_max - tau_min):  # walk down to the bottom of the first dip
        nxt = np.minimum(best + 1, search.shape[1] - 1)
        step = search[rows, nxt] < search[rows, best]
        if not step.any():
            break
        best = np.where(step, nxt, best)
    level = 10 * np.log10(e0 / w + 1e-12)
    voiced &= level > max(-50.0, float(np.max(level)) - 35.0)
    return np.where(voiced, sr / (best + tau_min), np.nan)


def snr_estimate(audio16k: np.ndarray) -> float:
    """Speech-to-noise ratio in dB from the frame-level distribution (loud frames vs the noise floor)."""
    levels = frame_db(audio16k, VAD_RATE, 0.02)
    if len(levels) < 4:
        return float("nan")
    noise = np.percentile(levels, 10)
    loud = levels[levels >= np.percentile(levels, 60)]
    speech = 10 * np.log10(np.mean(10 ** (loud / 10)))
    return float(np.clip(speech - max(noise, -100.0), -5.0, 80.0))


def c50_estimate(audio16k: np.ndarray) -> float:
    """Clarity C50 in dB from the steepest energy decays after speech offsets (a blind T60 estimate turned
    into C50 for an exponential decay). Dry speech -> high C50, roomy speech -> low."""
    sr, hop, win = VAD_RATE, int(0.005 * VAD_RATE), int(0.01 * VAD_RATE)
    if len(audio16k) < sr // 4:
        return float("nan")
    n = 1 + (len(audio16k) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    env = 10 * np.log10(np.mean(audio16k[idx].astype(np.float64) ** 2, axis=1) + 1e-12)
    k = 16  # 80 ms line fits
    if n <= k:
        return float("nan")
    t = (np.arange(k) - (k - 1) / 2) * hop / sr
    windows = np.lib.stride_tricks.sliding_window_view(env, k)
    slopes = (windows - windows.mean(axis=1, keepdims=True)) @ t / np.sum(t**2)  # dB per second
    floor = np.percentile(env, 10)
    start_ok = windows[:, 0] > floor + 25.0
    falling = slopes[start_ok & (slopes < 0)]
    if len(falling) < 3:
        return float("nan")
    decay = -np.percentile(falling, 5)  # steepest decays: the room limits how fast energy can fall
    t60 = float(np.clip(60.0 / max(decay, 1e-3), 0.05, 5.0))
    a = 13.8155 / t60
    return float(np.clip(10 * np.log10(np.expm1(a * 0.05)), -10.0, 60.0))


def measure(audio16k_trimmed: np.ndarray, audio16k_full: np.ndarray, text: str, language: str) -> dict[str, float]:
    """The numeric annotations of one utterance (DataSpeech column names, speaking rate in syllables/s)."""
    f0 = pitch_track(audio16k_trimmed)
    f0 = f0[np.isfinite(f0)]
    duration = len(audio16k_trimmed) / VAD_RATE
    return {
        "utterance_pitch_mean": float(np.mean(f0)) if len(f0) else float("nan"),
        "utterance_pitch_std": float(np.std(f0)) if len(f0) else float("nan"),
        "speaking_rate": syllable_count(text, language) / duration if duration > 0 else float("nan"),
        "snr": snr_estimate(audio16k_full),
        "c50": c50_estimate(audio16k_full),
    }


def to_bin(value: float, edges: list[float], names: list[str]) -> str:
    """The text bin of ``value`` (the middle bin when the value is unknown)."""
    if value is None or not np.isfinite(value):
        return names[len(names) // 2]
    return names[int(np.searchsorted(edges, value, side="right"))]


def describe(rows: list[dict[str, Any]], edges: dict[str, list[float]] | None = None,
             speaker_names: dict[str, str] | None = None) -> None:
    """Add the text bins (pitch, speed, noise, reverberation, speech_monotony) and ``text_description`` to
    each row in place. Pitch is binned on the speaker's mean pitch, against edges for the speaker's gender."""
    edges = {**DEFAULT_EDGES, **(edges or {})}
    speaker_names = speaker_names or {}
    by_speaker: dict[str, list[float]] = {}
    for r in rows:
        if np.isfinite(r.get("utterance_pitch_mean", np.nan)):
            by_speaker.setdefault(r["speaker"], []).append(r["utterance_pitch_mean"])
    speaker_pitch = {s: float(np.mean(v)) for s, v in by_speaker.items()}
    for r in rows:
        pitch_edges = edges.get(f"pitch_{r.get('gender')}", edges["pitch_unknown"])
        r["pitch"] = to_bin(speaker_pitch.get(r["speaker"], np.nan), pitch_edges, PITCH_BINS)
        r["speed"] = to_bin(r.get("speaking_rate", np.nan), edges["speaking_rate"], SPEAKING_RATE_BINS)
        r["noise"] = to_bin(r.get("snr", np.nan), edges["snr"], SNR_BINS)
        r["reverberation"] = to_bin(r.get("c50", np.nan), edges["c50"], REVERBERATION_BINS)
        r["speech_monotony"] = to_bin(r.get("utterance_pitch_std", np.nan), edges["utterance_pitch_std"],
                                      MONOTONY_BINS)
        r["text_description"] = description(r, speaker_names.get(r["speaker"]))


def _phrases(row: dict[str, Any]) -> dict[str, str]:
    """Bin labels turned into phrases that read well inside a sentence."""
    speed = "at a moderate speed" if row["speed"] == "moderate speed" else row["speed"]
    pitch = "a moderately pitched voice" if row["pitch"] == "moderate pitch" else f"a {row['pitch']} voice"
    monotony = row["speech_monotony"] if row["speech_monotony"] == "moderate intonation" else \
        f"a {row['speech_monotony']} delivery"
    reverb = "has moderate reverberation" if row["reverberation"] == "moderate reverberation" else \
        f"sounds {row['reverberation'].replace(' sounding', '')}"
    noise = "has moderate ambient sound" if row["noise"] == "moderate ambient sound" else f"is {row['noise']}"
    return {"speed": speed, "pitch": pitch, "monotony": monotony, "reverb": reverb, "noise": noise}


def description(row: dict[str, Any], name: str | None = None) -> str:
    """One sentence from a template chosen by a hash of the id (stable across runs)."""
    who = name or {"female": "a woman", "male": "a man"}.get(row.get("gender") or "", "the speaker")
    template = TEMPLATES[int(hashlib.sha1(row["id"].encode()).hexdigest(), 16) % len(TEMPLATES)]
    text = template.format(who=who, **_phrases(row))
    return text[0].upper() + text[1:]
