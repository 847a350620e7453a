"""Script to speech: per-section WAVs, a combined WAV with pauses and matched loudness, and a JSON of
sections, chunks, phonemes and (English) word timings; plus the stage entry point used by notebook and CLI."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .assets import MAX_PHONEMES, SAMPLE_RATE
from .backends import HOP, choose_backend
from .text import PUNCTUATION, Section, check_language, chunk_text, load_script, parse_script, spoken_phoneme_count
from .voices import blend_packs, check_speed, describe_blend, validate_blend

STAGE = "05_kokoro_synthesis"
PEAK_CEILING = 0.98


@dataclass
class Voice:
    weights: dict[str, float]
    pack: np.ndarray
    note: str = ""

    @property
    def label(self) -> str:
        return describe_blend(self.weights)


def resolve_voice(backend, spec, fallback: str | None = None) -> Voice:
    """Validate a voice spec against the backend's voices and build its (blended) pack; when the spec names
    voices this backend lacks and a fallback is given, use the fallback and say so."""
    available = backend.voices()
    try:
        weights = validate_blend(spec, available)
        note = ""
    except ValueError as err:
        if not fallback or not str(err).startswith("unknown voice"):
            raise
        weights = validate_blend(fallback, available)
        note = f"{spec} is not available with the {backend.name} backend; using {fallback} instead"
    return Voice(weights, blend_packs(weights, backend.voice_pack), note)


def _word_timings(tokens: list[Any], durations: np.ndarray, offset: float, limit: float) -> list[dict[str, Any]]:
    """Start/end seconds of each spoken English word, from the model's per-token durations (capped at limit)."""
    import torch
    from kokoro.pipeline import KPipeline

    KPipeline.join_timestamps(tokens, torch.from_numpy(durations))
    words = []
    for t in tokens:
        if t.phonemes and t.phonemes not in PUNCTUATION and getattr(t, "start_ts", None) is not None \
                and getattr(t, "end_ts", None) is not None:
            words.append({"word": t.text, "start": round(min(offset + t.start_ts, limit), 3),
                          "end": round(min(offset + t.end_ts, limit), 3)})
    return words


def trim_tail(audio: np.ndarray, floor_db: float = -40.0, keep_s: float = 0.08) -> np.ndarray:
    """Cut the silence Kokoro leaves after the last sound (keeping ``keep_s``), so that the pauses between
    chunks and sections are the configured ones; leading silence is kept (word timings count from it)."""
    if not len(audio):
        return audio
    loud = np.flatnonzero(np.abs(audio) > np.max(np.abs(audio)) * 10 ** (floor_db / 20))
    end = min(len(audio), int(loud[-1]) + 1 + int(keep_s * SAMPLE_RATE)) if len(loud) else len(audio)
    return audio[:end]


class Speaker:
    """A Kokoro backend and the reason it was chosen: speaks text of any length in one language."""

    def __init__(self, backend, reason: str = ""):
        self.backend, self.reason = backend, reason

    @classmethod
    def create(cls, backend: str = "auto", **kwargs: Any) -> Speaker:
        """Choose and build a backend (see :func:`backends.choose_backend`)."""
        return cls(*choose_backend(backend, **kwargs))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Speaker:
        """The backend a stage profile asks for (keys backend, repo_id, device, onnx_threads)."""
        return cls.create(params["backend"], repo_id=params["repo_id"], device=params["device"],
                          onnx_threads=params["onnx_threads"] or None)

    def speak(self, text: str, voice: Voice, *, lang: str = "en-us", speed: float = 1.0,
              chunk_pause_s: float = 0.1, max_phonemes: int = MAX_PHONEMES,
              where: str = "text") -> tuple[np.ndarray, dict[str, Any]]:
        """Audio for one text (chunked at sentence boundaries) and its chunks, phonemes and word timings;
        a smaller ``max_phonemes`` gives shorter chunks and a lower peak memory."""
        lang, speed = check_language(lang), check_speed(speed)
        if not 16 <= max_phonemes <= MAX_PHONEMES:
            raise ValueError(f"max_phonemes must be between 16 and {MAX_PHONEMES}, got {max_phonemes}")
        gap = np.zeros(int(round(chunk_pause_s * SAMPLE_RATE)), np.float32)
        pieces, chunks, words, unspoken, t = [], [], [], [], 0.0
        for chunk in chunk_text(text, lang, limit=max_phonemes, where=where):
            out = self.backend.infer(chunk.phonemes, voice.pack, speed)
            if len(out.durations) != out.n_tokens + 2:  # the model must have read every token it was given
                raise RuntimeError(f"{where}: the model returned durations for {len(out.durations) - 2} of "
                                   f"{out.n_tokens} phoneme tokens of {chunk.text[:60]!r}")
            if pieces:
                pieces.append(gap)
                t += len(gap) / SAMPLE_RATE
            audio = trim_tail(out.audio)
            pieces.append(audio)
            if chunk.tokens is not None:
                unspoken += [tk.text for tk in chunk.tokens if not tk.phonemes and tk.text.strip()
                             and not set(tk.text) <= PUNCTUATION]
                if not out.unknown:
                    words += _word_timings(chunk.tokens, out.durations, t, t + len(audio) / SAMPLE_RATE)
            chunks.append({"text": chunk.text, "phonemes": chunk.phonemes, "n_phonemes": len(chunk.phonemes),
                           "n_tokens": out.n_tokens, "unknown_symbols": out.unknown,
                           "start": round(t, 3), "end": round(t + len(audio) / SAMPLE_RATE, 3),
                           "frames": int(out.durations.sum()), "samples": len(out.audio),
                           "trimmed_tail_samples": len(out.audio) - len(audio)})
            t += len(audio) / SAMPLE_RATE
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        info = {"chunks": chunks, "words": words if lang.startswith("en-") else None,
                "spoken_phonemes": sum(spoken_phoneme_count(c["phonemes"]) for c in chunks),
                "unspoken_words": unspoken}
        return audio, info


def loudness_gains(sections: list[np.ndarray], target_lufs: float) -> tuple[list[float], list[float]]:
    """Gains that bring every section to the same integrated loudness (target LUFS), lowered together when a
    section would clip, and each section's measured loudness before the gain."""
    import pyloudnorm

    meter = pyloudnorm.Meter(SAMPLE_RATE)
    measured, gains = [], []
    for audio in sections:
        if len(audio) >= int(0.5 * SAMPLE_RATE):
            lufs = float(meter.integrated_loudness(audio.astype(np.float64)))
        else:  # too short for the gated measurement: fall back to RMS in dBFS
            lufs = float(20 * np.log10(np.sqrt(np.mean(audio ** 2)) + 1e-9))
        measured.append(lufs)
        gains.append(10 ** ((target_lufs - lufs) / 20) if np.isfinite(lufs) and lufs > -70 else 1.0)
    peak = max((float(np.max(np.abs(a))) * g for a, g in zip(sections, gains, strict=True) if len(a)), default=0.0)
    if peak > PEAK_CEILING:
        gains = [g * PEAK_CEILING / peak for g in gains]
    return gains, measured


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40] or "section"


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def synthesize_script(speaker: Speaker, sections: list[Section], out_dir: str | Path, *, voice: Voice,
                      lang: str = "en-us", speed: float = 1.0, pause_s: float | list[float] = 0.8,
                      target_lufs: float = -20.0, chunk_pause_s: float = 0.1,
                      max_phonemes: int = MAX_PHONEMES) -> dict[str, Any]:
    """Speak every section, write section_NN_<title>.wav, combined.wav and script.json into out_dir (the JSON
    is written last, so a folder without it is incomplete) and return the JSON content."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "script.json").unlink(missing_ok=True)
    pauses = [float(pause_s)] * max(len(sections) - 1, 0) if np.isscalar(pause_s) else [float(p) for p in pause_s]
    if len(pauses) != max(len(sections) - 1, 0) or any(p < 0 for p in pauses):
        raise ValueError(f"pause_s must be one number >= 0 or {len(sections) - 1} numbers >= 0 (one per gap)")
    started = time.perf_counter()
    audios, infos = [], []
    for i, sec in enumerate(tqdm(sections, desc="sections", unit="section")):
        audio, info = speaker.speak(sec.text, voice, lang=lang, speed=speed, chunk_pause_s=chunk_pause_s,
                                    max_phonemes=max_phonemes, where=f"section {i + 1} ({sec.title!r})")
        audios.append(audio)
        infos.append(info)
    synth_s = time.perf_counter() - started
    gains, measured = loudness_gains(audios, target_lufs)
    records, combined, t = [], [], 0.0
    for i, (sec, audio, info, gain) in enumerate(zip(sections, audios, infos, gains, strict=True)):
        audio = (audio * gain).astype(np.float32)
        path = out / f"section_{i + 1:02d}_{_slug(sec.title)}.wav"
        _write_wav(path, audio)
        duration = len(audio) / SAMPLE_RATE
        words = None if info["words"] is None else [
            {**w, "start_combined": round(w["start"] + t, 3), "end_combined": round(w["end"] + t, 3)}
            for w in info["words"]]
        records.append({"index": i + 1, "title": sec.title, "text": sec.text, "wav": path.name,
                        "start": round(t, 3), "end": round(t + duration, 3), "duration_s": round(duration, 3),
                        "loudness_in_lufs": round(measured[i], 2), "gain_db": round(20 * np.log10(gain), 2),
                        "chunks": info["chunks"], "spoken_phonemes": info["spoken_phonemes"],
                        "unspoken_words": info["unspoken_words"], "words": words})
        combined.append(audio)
        t += duration
        if i < len(pauses):
            combined.append(np.zeros(int(round(pauses[i] * SAMPLE_RATE)), np.float32))
            t += pauses[i]
    track = np.concatenate(combined) if combined else np.zeros(0, np.float32)
    _write_wav(out / "combined.wav", track)
    audio_s = len(track) / SAMPLE_RATE
    speech_s = sum(len(a) for a in audios) / SAMPLE_RATE
    manifest = {
        "backend": speaker.backend.name, "model": speaker.backend.description, "reason": speaker.reason,
        "voice": voice.label, "voice_weights": voice.weights, "voice_note": voice.note, "language": lang,
        "speed": speed, "sample_rate": SAMPLE_RATE, "pauses_s": pauses, "target_lufs": target_lufs,
        "combined_wav": "combined.wav", "duration_s": round(audio_s, 3), "synthesis_s": round(synth_s, 3),
        "rtf": round(synth_s / speech_s, 4) if speech_s else None, "frame_hop": HOP, "sections": records,
    }
    tmp = out / ".script.json.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, out / "script.json")
    return manifest


def backend_message(speaker: Speaker, voice: Voice) -> str:
    """One line saying which backend, model and voice are used, and why."""
    msg = f"Kokoro backend: {speaker.backend.name} - {speaker.backend.description}; voice: {voice.label}; " \
          f"why: {speaker.reason}"
    return msg + (f"; note: {voice.note}" if voice.note else "")


def run_stage(profile: str = "auto", workspace=None, *, script: str | Path | None = None, text: str | None = None,
              overrides: dict[str, Any] | None = None, speaker: Speaker | None = None,
              run_name: str | None = None) -> dict[str, Any]:
    """The whole stage: load the profile, choose backend and voice (printing why), speak the script into
    <workspace>/kokoro/<run_name>/, write what notebook 05 shows there (``view.json``, ``track.png``) and append
    the ``05_kokoro_synthesis`` stage record, which lists every file in its outputs."""
    from ..env import seed_everything
    from ..paths import Workspace
    from ..profiles import load_profile
    from ..records import append_stage_record, stage_run

    params = load_profile("kokoro", profile, overrides)
    seed_everything(load_profile("suite", params["profile"])["seed"])
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if text is not None:
        sections, source = parse_script(text, source="<text>"), "<text>"
    else:
        sections, source = load_script(script or params["script"])
    out_dir = ws.stage_dir("kokoro", run_name or params["run_name"])
    inputs = {"script": source, "sections": len(sections)}
    with stage_run(STAGE, profile=params["profile"], workspace=ws, inputs=inputs):
        speaker = speaker or Speaker.from_params(params)
        voice = resolve_voice(speaker.backend, params["voice"], params["fallback_voice"])
        print(backend_message(speaker, voice))
        manifest = synthesize_script(speaker, sections, out_dir, voice=voice, lang=params["lang"],
                                     speed=params["speed"], pause_s=params["pause_s"],
                                     target_lufs=params["target_lufs"], chunk_pause_s=params["chunk_pause_s"],
                                     max_phonemes=params["max_phonemes"])
        from .display import write_view

        shown = write_view(manifest, out_dir, voices=speaker.backend.voices())
        manifest["dir"] = str(out_dir)
        append_stage_record(STAGE, profile=params["profile"], status="done", inputs=inputs,
                            outputs={"dir": out_dir, "combined_wav": out_dir / "combined.wav",
                                     "manifest": out_dir / "script.json", **shown},
                            metrics={"backend": manifest["backend"], "voice": manifest["voice"],
                                     "sections": len(sections), "duration_s": manifest["duration_s"],
                                     "synthesis_s": manifest["synthesis_s"], "rtf": manifest["rtf"]},
                            workspace=ws)
    return manifest


PLAN_SETTINGS = ("profile", "backend", "voice", "fallback_voice", "lang", "speed", "pause_s", "chunk_pause_s",
                 "max_phonemes", "target_lufs", "script", "run_name")


def plan(profile: str = "auto", workspace=None, *, script: str | Path | None = None, text: str | None = None,
         overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a ``speak`` run with the same arguments would do, without loading a model: the settings and the
    script's sections, written to ``<workspace>/kokoro/plan.json`` (notebook 05 shows it before synthesis)."""
    from ..paths import Workspace
    from ..profiles import load_profile
    from .text import LANGUAGES

    params = load_profile("kokoro", profile, overrides)
    check_language(params["lang"])
    if text is not None:
        sections, source = parse_script(text, source="<text>"), "<text>"
    else:
        sections, source = load_script(script or params["script"])
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    result = {"source": source, "settings": {k: params[k] for k in PLAN_SETTINGS},
              "sections": [{"index": i + 1, "title": s.title, "text": s.text, "characters": len(s.text)}
                           for i, s in enumerate(sections)],
              "languages": {code: name for code, (_, name) in LANGUAGES.items()}}
    path = ws.stage_dir("kokoro") / "plan.json"
    tmp = path.with_name(".plan.json.tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    result["path"] = str(path)
    return result


def say(profile: str = "auto", workspace=None, *, text: str, out: str | Path,
        overrides: dict[str, Any] | None = None, speaker: Speaker | None = None) -> dict[str, Any]:
    """Speak one text (any length, one language) into the WAV ``out`` (relative paths are inside the workspace)
    at the profile's loudness, with ``<out>.json`` beside it (voice, chunks, phonemes, word timings). The
    notebook's Hindi example and its Try-it panel use it; it is not a stage run, so it appends no record."""
    from ..env import seed_everything
    from ..paths import Workspace
    from ..profiles import load_profile

    params = load_profile("kokoro", profile, overrides)
    if not text or not text.strip():
        raise ValueError("nothing to say: the text is empty")
    seed_everything(load_profile("suite", params["profile"])["seed"])
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    path = Path(out) if Path(out).is_absolute() else ws.root / out
    if path.suffix.lower() != ".wav":
        raise ValueError(f"--out must name a .wav file, got {out}")
    path.parent.mkdir(parents=True, exist_ok=True)
    speaker = speaker or Speaker.from_params(params)
    voice = resolve_voice(speaker.backend, params["voice"], params["fallback_voice"])
    started = time.perf_counter()
    audio, info = speaker.speak(text, voice, lang=params["lang"], speed=params["speed"],
                                chunk_pause_s=params["chunk_pause_s"], max_phonemes=params["max_phonemes"])
    seconds = time.perf_counter() - started
    gains, _ = loudness_gains([audio], params["target_lufs"])
    _write_wav(path, (audio * gains[0]).astype(np.float32))
    duration = len(audio) / SAMPLE_RATE
    result = {"wav": str(path), "text": text, "backend": speaker.backend.name, "voice": voice.label,
              "voice_note": voice.note, "language": params["lang"], "speed": params["speed"],
              "duration_s": round(duration, 3), "synthesis_s": round(seconds, 3),
              "chunks": [{"chunk": i + 1, "phonemes": c["n_phonemes"], "text": c["text"], "read as": c["phonemes"]}
                         for i, c in enumerate(info["chunks"])],
              "words": info["words"],
              "summary": f"{speaker.backend.name} | {voice.label} | {params['lang']} | {len(info['chunks'])} "
                         f"chunk(s) | {duration:.1f} s" + (f" | {voice.note}" if voice.note else "")}
    meta = path.with_suffix(".json")
    tmp = meta.with_name(f".{meta.name}.tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, meta)
    return result
