"""Stage 07's evaluation after training (issue #21): the fine-tuned model speaks the first ``eval_items`` test-split
utterances of each language (the validation split when a dataset has no test split) in that language's voice, and
each clip is judged: audio produced, not silent, no other fault (:func:`nbhelpers.measure.audiocheck.audio_faults`)
and the right length (its duration over the recording's within ``eval_length_ratio``). Reported per language: the
success rate, CER by the suite's Whisper (:mod:`nbhelpers.measure.quality`) or, for a Whisper that cannot read the
language, the reason it is not meaningful (stage 06's rule), and DNSMOS over the audible clips. Saved as
``<run>/eval.json``."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..measure.audiocheck import audio_faults
from .latents import read_manifest


def judge_clip(audio: np.ndarray, sample_rate: int, wav: Path, *, reference_seconds: float | None,
               length_ratio: tuple[float, float]) -> dict[str, Any]:
    """Write ``audio`` to ``wav`` and judge it: produced (samples, all finite), its faults (silent, clipped, ...),
    its length against the recording's; ``success`` only when produced, fault-free and of the right length."""
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    produced = audio.size > 0 and bool(np.isfinite(audio).all())
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav.with_name(f".{wav.stem}.{os.getpid()}.tmp.wav")
    sf.write(tmp, np.clip(audio, -1, 1) if produced else np.zeros(0, np.float32), sample_rate, subtype="FLOAT")
    tmp.replace(wav)
    faults = audio_faults(wav) if produced else []
    seconds = audio.size / sample_rate
    ratio = seconds / reference_seconds if reference_seconds else None
    length_ok = ratio is not None and length_ratio[0] <= ratio <= length_ratio[1]
    return {"wav": wav, "seconds": round(seconds, 3), "reference_seconds": reference_seconds,
            "length_ratio": round(ratio, 3) if ratio is not None else None, "produced": produced,
            "silent": any(f.label == "silent" for f in faults), "faults": [str(f) for f in faults],
            "length_ok": length_ok, "success": produced and not faults and length_ok}


def cer_not_meaningful(asr_model: str, language: str) -> str | None:
    """Why a CER of ``asr_model`` on ``language`` means nothing (stage 06's verdict), or None."""
    from ..bench.report import NOT_MEANINGFUL, quality_verdicts

    reason = quality_verdicts({"language": language, "quality": {"cer": math.nan}}, asr_model).get("cer")
    return f"{NOT_MEANINGFUL}: {reason}" if reason else None


def score_language(clips: list[dict[str, Any]], audios: list[np.ndarray], texts: list[str], sample_rate: int, *,
                   language: str, asr_model: str) -> dict[str, Any]:
    """Success rate and its parts, CER (or why not meaningful) and mean DNSMOS over the audible clips."""
    from ..measure import quality

    n = len(clips)
    out: dict[str, Any] = {"items": n, "success_rate": sum(c["success"] for c in clips) / n if n else None,
                           "produced": sum(c["produced"] for c in clips), "silent": sum(c["silent"] for c in clips),
                           "right_length": sum(c["length_ok"] for c in clips), "language": language,
                           "asr_model": asr_model}
    reason = cer_not_meaningful(asr_model, language)
    if reason:
        out["cer"] = reason
    else:  # a silent or empty clip is heard as nothing: CER 1
        heard = [quality.transcribe(a, sample_rate, language, max_new_tokens=quality.asr_token_cap(t),
                                    asr_model=asr_model) if c["produced"] and not c["silent"] else ""
                 for a, t, c in zip(audios, texts, clips, strict=True)]
        for clip, h in zip(clips, heard, strict=True):
            clip["heard"] = h
        out["cer"] = float(np.mean([quality.cer(t, h) for t, h in zip(texts, heard, strict=True)]))
    audible = [a for a, c in zip(audios, clips, strict=True) if c["produced"] and not c["silent"]]
    if not audible:
        out["dnsmos"] = "not_available: no audible clip to score"
    else:
        scores = [quality.dnsmos(a, sample_rate) for a in audible]
        out["dnsmos"] = {k: round(float(np.mean([s[k] for s in scores])), 3) for k in quality.DNSMOS_FIELDS}
    return out


def evaluate(model: Any, languages: list[Any], cfg: dict[str, Any], *, out_dir: Path, seed: int) -> dict[str, Any]:
    """Speak and score the first ``eval_items`` held-out utterances of each of ``languages``
    (:class:`nbhelpers.pocket.stage.Language`); clips go to ``out_dir/<language>/``."""
    from .model import synthesize

    n = cfg["eval_items"]
    lo, hi = (float(x) for x in cfg["eval_length_ratio"])
    result: dict[str, Any] = {"items_per_language": n, "asr_model": cfg["eval_asr_model"],
                              "length_ratio": [lo, hi], "languages": {}}
    for lang in languages:
        split = "test" if lang.test.is_file() else "validation"
        rows = read_manifest(lang.test if split == "test" else lang.validation)[:n]
        voices = read_manifest(lang.validation) if lang.validation.is_file() else rows
        code = lang.code or str(rows[0].get("language") or "")
        texts = [r["text"] for r in rows]
        audios = []
        for i, text in enumerate(tqdm(texts, desc=f"pocket eval {code or lang.dataset}")):
            audios += synthesize(model, [text], voices[0]["audio_path"], seed=seed + i)
        clips = [judge_clip(a, model.sample_rate, out_dir / (lang.code or "run") / f"{r['id']}.wav",
                            reference_seconds=_seconds(r), length_ratio=(lo, hi))
                 for a, r in zip(audios, rows, strict=True)]
        scores = score_language(clips, audios, texts, model.sample_rate, language=code,
                                asr_model=cfg["eval_asr_model"])
        for clip, row in zip(clips, rows, strict=True):
            clip.update(id=row["id"], text=row["text"])
        result["languages"][lang.code or code] = {"dataset": lang.dataset, "split": split, **scores, "clips": clips}
    clips = [c for entry in result["languages"].values() for c in entry["clips"]]
    result["success_rate"] = sum(c["success"] for c in clips) / len(clips) if clips else None
    result["summary"] = summary_rows(result)
    return result


def _seconds(row: dict[str, Any]) -> float | None:
    """The recording's duration: the manifest's, else read from the file."""
    if row.get("duration"):
        return float(row["duration"])
    import soundfile as sf

    return float(sf.info(row["audio_path"]).duration)


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per language for the notebook's table (``summary`` in eval.json): success rate and its parts, CER
    (or why it is not meaningful), DNSMOS overall."""
    rows = []
    for code, e in result["languages"].items():
        dnsmos = e["dnsmos"]["dnsmos_ovrl"] if isinstance(e["dnsmos"], dict) else e["dnsmos"]
        rows.append({"language": code, "split": e["split"], "items": e["items"],
                     "success rate": None if e["success_rate"] is None else round(e["success_rate"], 3),
                     "silent": e["silent"], "right length": e["right_length"],
                     "CER": round(e["cer"], 3) if isinstance(e["cer"], float) else e["cer"],
                     "DNSMOS (overall)": dnsmos})
    return rows
