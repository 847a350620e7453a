"""Generation evaluation during training (issue #21): every ``gen_eval_every`` steps a few held-out test-split
items are spoken through :class:`nbhelpers.parler.synth.ParlerSynth` and scored for intelligibility (CER/WER by the
suite's Whisper, ``nbhelpers.measure``) and for adherence to the description (the pitch and speaking-rate bins that
data prep's annotate step wrote the description from, measured and binned by ``nbhelpers.data.annotate``).

A CER from a Whisper that cannot read the language is recorded as "not meaningful here: <reason>", never as a
number (the rule stage 06 uses). Generation runs with every RNG stream saved and restored, so a run with the
evaluation on trains exactly as one with it off, and resumes bit-for-bit.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..bench.report import ENGLISH_ONLY_ASR, LANGUAGE_NAMES, NOT_MEANINGFUL
from ..data.annotate import DEFAULT_EDGES, PITCH_BINS, SPEAKING_RATE_BINS, measure, pitch_track, to_bin
from ..data.audio import VAD_RATE, resample, speech_bounds
from ..data.text import SCRIPTS
from ..training import rng_state, set_rng_state
from .model import ParlerBundle

SCALARS = ("cer", "wer", "pitch_bin_match", "pitch_bin_distance", "speed_bin_match", "speed_bin_distance")


@dataclass(frozen=True)
class Item:
    """One held-out utterance: what to say, how (the description) and the bins the description was made from."""

    text: str
    description: str
    pitch: str | None = None  # a PITCH_BINS name, or None when the dataset has no annotate columns
    speed: str | None = None  # a SPEAKING_RATE_BINS name
    gender: str | None = None


def held_out_items(data: Any, n: int) -> list[Item]:
    """The first ``n`` rows of the test split (the validation split when there is no test split), without decoding
    their audio; bins are read from data prep's ``pitch``/``speed``/``gender`` columns when the dataset has them."""
    split = data["test"] if "test" in data and len(data["test"]) else data["validation"]
    split = split.select(range(min(n, len(split))))
    cols = [c for c in ("text", "text_description", "pitch", "speed", "gender") if c in split.column_names]
    rows = split.select_columns(cols).to_list()
    return [Item(r["text"], r["text_description"], r.get("pitch") or None, r.get("speed") or None,
                 r.get("gender") or None) for r in rows]


def asr_not_meaningful(asr_model: str, language: str) -> str | None:
    """Why a CER from ``asr_model`` means nothing for ``language`` (a Whisper that reads only English), or None."""
    if asr_model in ENGLISH_ONLY_ASR and language != "en":
        return f"{NOT_MEANINGFUL}: Whisper {asr_model} cannot read {LANGUAGE_NAMES.get(language, language)}"
    return None


def _bin_scores(measured: list[str | None], targets: list[str | None], names: list[str]) -> tuple[float, float]:
    """(share of clips in the target bin, mean distance in bins); an unmeasurable clip (silence, no voicing)
    counts as a miss at the largest distance, so a silent output scores worst, not the middle bin."""
    hits, dists = [], []
    for got, want in zip(measured, targets, strict=True):
        if got is None:
            hits.append(0.0)
            dists.append(float(len(names) - 1))
        else:
            hits.append(float(got == want))
            dists.append(float(abs(names.index(got) - names.index(want))))
    return float(np.mean(hits)), float(np.mean(dists))


def describe_clip(audio: np.ndarray, sr: int, text: str, language: str, edges: dict[str, list[float]],
                  gender: str | None) -> dict[str, Any]:
    """Pitch and speaking rate of one generated clip (annotate's ``measure`` on the speech found by the energy
    VAD) and their bins; a bin is None when the value cannot be measured (no speech, no voiced frames)."""
    a16 = resample(np.asarray(audio, dtype=np.float32), sr, VAD_RATE) if len(audio) else np.zeros(0, np.float32)
    start, end, _ = speech_bounds(audio, sr, method="energy", pad_s=0.1, audio16k=a16) if len(a16) else (0, 0, "")
    s16, e16 = int(start * VAD_RATE / sr), int(end * VAD_RATE / sr)
    if e16 <= s16:
        return {"pitch_hz": None, "speaking_rate": None, "pitch_bin": None, "speed_bin": None}
    if language in SCRIPTS:
        values = measure(a16[s16:e16], a16, text, language)
        pitch, rate = values["utterance_pitch_mean"], values["speaking_rate"]
    else:  # no syllable counter for the language: pitch only
        f0 = pitch_track(a16[s16:e16])
        pitch, rate = (float(np.nanmean(f0)) if np.isfinite(f0).any() else float("nan")), float("nan")
    pitch_edges = edges.get(f"pitch_{gender}", edges["pitch_unknown"])
    return {"pitch_hz": pitch if math.isfinite(pitch) else None,
            "speaking_rate": rate if math.isfinite(rate) else None,
            "pitch_bin": to_bin(pitch, pitch_edges, PITCH_BINS) if math.isfinite(pitch) else None,
            "speed_bin": to_bin(rate, edges["speaking_rate"], SPEAKING_RATE_BINS) if math.isfinite(rate) else None}


def score_clips(audios: list[np.ndarray], sr: int, items: list[Item], *, language: str, asr_model: str,
                edges: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Scores of generated clips against their items: mean CER/WER (or the reason they are not meaningful),
    pitch/speed bin agreement and distance (or why not: no bins in the dataset, no syllable counter for the
    language), and per clip what was heard and measured."""
    from ..measure import quality

    edges = {**DEFAULT_EDGES, **(edges or {})}
    clips = [{"text": it.text, **describe_clip(a, sr, it.text, language, edges, it.gender)}
             for a, it in zip(audios, items, strict=True)]
    out: dict[str, Any] = {"items": len(items), "asr_model": asr_model, "language": language}
    reason = asr_not_meaningful(asr_model, language)
    if reason:
        out["cer"] = out["wer"] = reason
    else:
        heard = [quality.transcribe(a, sr, language, max_new_tokens=quality.asr_token_cap(it.text), asr_model=asr_model)
                 if len(a) else "" for a, it in zip(audios, items, strict=True)]
        for clip, h in zip(clips, heard, strict=True):
            clip["heard"] = h
        out["cer"] = float(np.mean([quality.cer(it.text, h) for it, h in zip(items, heard, strict=True)]))
        out["wer"] = float(np.mean([quality.wer(it.text, h) for it, h in zip(items, heard, strict=True)]))
    for key, names, attr, why in (("pitch", PITCH_BINS, "pitch", None),
                                  ("speed", SPEAKING_RATE_BINS, "speed",
                                   None if language in SCRIPTS else f"no syllable counter for {language}")):
        targets = [getattr(it, attr) for it in items]
        if None in targets:
            why = why or "the test split has no pitch/speed bins (data prep's annotate step writes them)"
        if why:
            out[f"{key}_bin_match"] = out[f"{key}_bin_distance"] = f"{NOT_MEANINGFUL}: {why}"
            continue
        out[f"{key}_bin_match"], out[f"{key}_bin_distance"] = _bin_scores(
            [c[f"{key}_bin"] for c in clips], targets, names)
    out["clips"] = clips
    return out


class GenEval:
    """The periodic generation evaluation of one training run (main process only)."""

    def __init__(self, items: list[Item], cfg: dict[str, Any], *, seed: int):
        self.items, self.seed = items, seed
        self.every = cfg["gen_eval_every"]
        self.language, self.asr_model = cfg["gen_eval_language"], cfg["gen_eval_asr_model"]
        self.max_seconds = cfg["gen_eval_max_seconds"]
        self.chars_per_second = cfg["sample_max_chars_per_second"]
        if cfg["mode"] == "8bit":
            raise ValueError("gen_eval_every > 0 with mode 8bit: an 8-bit bitsandbytes model cannot be handed to the "
                             "synthesiser (transformers refuses .to() on it); set gen_eval_every=0, or train in mode "
                             "4bit or lora")
        if not items:
            print("NOTE: generation evaluation off: the dataset's test and validation splits are empty "
                  "(nothing held out to speak)")

    def due(self, step: int) -> bool:
        return self.every > 0 and bool(self.items) and step % self.every == 0

    def run(self, bundle: ParlerBundle, model: torch.nn.Module, *, step: int, autocast: Any = contextlib.nullcontext,
            writer: Any = None, wandb_run: Any = None) -> dict[str, Any]:
        """Speak the items with ``model`` (the ParlerTTSForConditionalGeneration being trained, unwrapped), score
        them, log audio and scalars (TensorBoard, W&B) at ``step`` and return the scores. Every RNG stream is left as
        it was; the model is left in eval mode (the trainer puts its own train mode back)."""
        from tqdm.auto import tqdm

        from .synth import ParlerSynth, SynthSettings, shortest_seconds

        saved = rng_state()
        try:
            # fp32 weights, no presets (the description encoder may be training), no int8/compile: the model is live
            synth = ParlerSynth(replace(bundle, model=model), SynthSettings(presets=False, dtype="float32"))
            audios = []
            for i, it in enumerate(tqdm(self.items, desc=f"gen-eval step {step}", leave=False)):
                floor = shortest_seconds([it.text], self.chars_per_second)
                with autocast():
                    audios += synth.synthesize([it.text], it.description, seed=self.seed + i, min_seconds=floor,
                                               max_seconds=max(self.max_seconds, floor))
            scores = score_clips(audios, bundle.sampling_rate, self.items, language=self.language,
                                 asr_model=self.asr_model)
        finally:
            set_rng_state(saved)
            release_asr()
        scalars = {f"gen_eval/{k}": scores[k] for k in SCALARS if isinstance(scores.get(k), float)}
        if writer is not None:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
            for i, a in enumerate(audios):
                writer.add_audio(f"gen_eval/item_{i}", torch.from_numpy(np.clip(a, -1, 1))[None], step,
                                 sample_rate=bundle.sampling_rate)
        if wandb_run is not None:
            import wandb

            wandb_run.log({**scalars, **{f"gen_eval/item_{i}": wandb.Audio(a, sample_rate=bundle.sampling_rate)
                                         for i, a in enumerate(audios)}}, step=step)
        return scores


def release_asr() -> None:
    """Free the cached Whisper between evaluations: on a T4 its weights would otherwise sit beside training's."""
    from ..measure import quality

    quality._whisper.cache_clear()
