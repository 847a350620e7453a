"""Per-utterance processing: normalise the text, decode, check and clean the audio, write one 16-bit WAV per
target rate, and measure the annotations. Runs in worker processes; returns a plain dict (kept or rejected)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from . import audio as A
from .sources import Utterance
from .text import normalize_text, script_ratio, syllable_count
from .validate import rejection


@dataclass(frozen=True)
class CleanConfig:
    """Cleaning and validation settings (from the ``data`` profile)."""

    rates: dict[str, int] = field(default_factory=lambda: {"parler": 44100, "ljspeech": 22050, "pocket": 24000})
    target_lufs: float = -23.0
    vad: str = "auto"  # silero | energy | auto
    trim_pad_s: float = 0.1
    resample_quality: str = "HQ"
    min_duration: float = 0.5
    max_duration: float = 20.0
    max_clip_fraction: float = 0.002
    silence_dbfs: float = -55.0
    min_script_ratio: float = 0.8
    min_syllables_per_s: float = 1.0
    max_syllables_per_s: float = 12.0
    duration_tolerance_s: float = 0.25
    annotate: bool = True

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


# Where each target rate's WAVs live inside the dataset folder (see layout.py).
WAV_DIRS = {"parler": "audio/44100", "ljspeech": "ljspeech/wavs", "pocket": "pocket/wavs"}


def file_id(utt_id: str) -> str:
    """A file-system-safe name for an utterance id (a short hash is appended if anything was replaced)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", utt_id).strip(".") or "utt"
    return safe if safe == utt_id else f"{safe[:80]}_{hashlib.sha1(utt_id.encode()).hexdigest()[:8]}"


def item_key(utt: Utterance, cfg: CleanConfig) -> str:
    """Cache key of one item: its audio (path, size, mtime or bytes hash), text, speaker and the settings."""
    if utt.audio_path:
        try:
            st = Path(utt.audio_path).stat()
            audio = f"{utt.audio_path}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            audio = f"{utt.audio_path}|missing"
    elif utt.audio_bytes is not None:
        audio = hashlib.sha1(utt.audio_bytes).hexdigest()
    else:
        audio = "none"
    parts = [utt.id, utt.text, utt.language, utt.speaker, str(utt.gender), str(utt.duration), audio,
             str(utt.problem), cfg.fingerprint()]
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def _reject(utt: Utterance, reason: str, detail: str = "") -> dict[str, Any]:
    rec = {"status": "rejected", **rejection(utt.id, utt.source, reason, detail)}
    if utt.audio_path:
        rec["audio"] = str(utt.audio_path)  # the source file, so a report can play what was rejected
    return rec


def clean_item(utt: Utterance, cfg: CleanConfig, root: Path, timings: dict[str, float] | None = None
               ) -> dict[str, Any]:
    """Validate and clean one utterance; write its WAVs under ``root``; return a kept or rejected record.

    ``timings`` (optional) accumulates wall and CPU seconds spent in cleaning+validation and in annotation
    (``clean``, ``clean_cpu``, ``annotate``, ``annotate_cpu``; the CPU figures ignore time lost to other
    processes on a busy machine).
    """
    t0, c0 = time.perf_counter(), time.thread_time()
    if utt.problem:
        return _reject(utt, utt.problem, utt.detail)
    text = normalize_text(utt.text, utt.language)
    if not re.search(r"\w", text):
        return _reject(utt, "empty_text", f"raw transcript: {utt.text[:60]!r}")
    ratio = script_ratio(text, utt.language)
    if ratio < cfg.min_script_ratio:
        return _reject(utt, "wrong_script", f"only {ratio:.0%} of letters in the expected script: {text[:60]!r}")
    try:
        if utt.audio_bytes is not None:
            data, sr = sf.read(io.BytesIO(utt.audio_bytes), dtype="float32", always_2d=True)
        else:
            data, sr = A.load_audio(utt.audio_path)
    except (A.AudioReadError, sf.LibsndfileError, RuntimeError, ValueError, TypeError, MemoryError) as err:
        return _reject(utt, "unreadable_audio", str(err)[:200])
    if not A.MIN_RATE <= sr <= A.MAX_RATE:
        return _reject(utt, "unreadable_audio", f"sample rate {sr} Hz in the header is implausible (damaged header?)")
    if data.size == 0:
        return _reject(utt, "empty_audio", f"{utt.audio_path or 'bytes'} has no samples")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        return _reject(utt, "invalid_samples", f"{bad} of {data.size} samples are NaN or infinite")
    raw_duration = data.shape[0] / sr
    if raw_duration > 3 * cfg.max_duration + 10:  # no trimming can bring it under max_duration: skip the work
        return _reject(utt, "too_long", f"{raw_duration:.1f}s before trimming > max_duration {cfg.max_duration}s")
    if utt.duration is not None and abs(float(utt.duration) - raw_duration) > cfg.duration_tolerance_s + 0.05 * raw_duration:
        return _reject(utt, "duration_mismatch", f"declared {float(utt.duration):.2f}s, audio {raw_duration:.2f}s")
    clip = A.clipped_fraction(data)
    if clip > cfg.max_clip_fraction:
        return _reject(utt, "clipped", f"{clip:.2%} of samples at full scale (limit {cfg.max_clip_fraction:.2%})")
    mono = A.to_mono(data)
    peak_db = 20 * np.log10(float(np.max(np.abs(mono))) + 1e-10)
    if peak_db < cfg.silence_dbfs:
        return _reject(utt, "silent", f"peak {peak_db:.1f} dBFS < {cfg.silence_dbfs} dBFS")
    a16 = A.resample(mono, sr, A.VAD_RATE, quality="MQ")
    start, end, method = A.speech_bounds(mono, sr, method=cfg.vad, pad_s=cfg.trim_pad_s, audio16k=a16)
    if end <= start:
        return _reject(utt, "silent", f"no speech found by the {method} VAD")
    trimmed = mono[start:end]
    duration = len(trimmed) / sr
    if duration < cfg.min_duration:
        return _reject(utt, "too_short", f"{duration:.2f}s of speech < min_duration {cfg.min_duration}s")
    if duration > cfg.max_duration:
        return _reject(utt, "too_long", f"{duration:.2f}s > max_duration {cfg.max_duration}s")
    rate = syllable_count(text, utt.language) / duration
    if not cfg.min_syllables_per_s <= rate <= cfg.max_syllables_per_s:
        return _reject(utt, "text_audio_mismatch", f"{rate:.1f} syllables/s for {duration:.2f}s of audio "
                                                   f"(plausible: {cfg.min_syllables_per_s}-{cfg.max_syllables_per_s})")
    normed, lufs_before, gain_db = A.normalize_loudness(trimmed, sr, cfg.target_lufs)
    fid = file_id(utt.id)
    files = {}
    for name, target in cfg.rates.items():
        out = A.resample(normed, sr, target, quality=cfg.resample_quality)
        rel = f"{WAV_DIRS[name]}/{fid}.wav"
        A.write_pcm16(root / rel, out, target)
        files[name] = rel
    t1, c1 = time.perf_counter(), time.thread_time()
    record = {
        "status": "kept", "id": utt.id, "file_id": fid, "audio_path": files["parler"], "files": files,
        "text": text, "raw_text": utt.text, "speaker": utt.speaker, "gender": utt.gender, "language": utt.language,
        "duration": round(duration, 4), "source": utt.source, "source_rate": sr, "source_channels": data.shape[1],
        "trim": [round(start / sr, 3), round(end / sr, 3)], "vad": method, "clipped_fraction": clip,
        "loudness_before": round(lufs_before, 2), "gain_db": round(gain_db, 2), "script_ratio": round(ratio, 3),
    }
    if cfg.annotate:
        from .annotate import measure

        s16, e16 = int(start * A.VAD_RATE / sr), int(end * A.VAD_RATE / sr)
        record.update({k: (round(v, 3) if np.isfinite(v) else None)
                       for k, v in measure(a16[s16:e16], a16, text, utt.language).items()})
    if timings is not None:
        t2, c2 = time.perf_counter(), time.thread_time()
        for key, value in (("clean", t1 - t0), ("annotate", t2 - t1), ("clean_cpu", c1 - c0), ("annotate_cpu", c2 - c1)):
            timings[key] = timings.get(key, 0.0) + value
    return record
