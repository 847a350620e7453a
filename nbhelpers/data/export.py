"""Exports of a prepared dataset: the Hugging Face DatasetDict for Parler, the LJSpeech folder for Coqui, the
JSON manifests for Pocket TTS, and the stats summary with its duration histogram."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from .layout import SPLITS, DatasetPaths

PARLER_COLUMNS = ("id", "text", "raw_text", "speaker", "gender", "language", "duration", "utterance_pitch_mean",
                  "utterance_pitch_std", "speaking_rate", "snr", "c50", "pitch", "speed", "noise", "reverberation",
                  "speech_monotony", "text_description")
LJ_SPLIT_FILES = {"train": "metadata_train.csv", "validation": "metadata_val.csv", "test": "metadata_test.csv"}


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line, written atomically."""
    _atomic_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def export_parler(paths: DatasetPaths, rows: list[dict[str, Any]], rate: int = 44100) -> None:
    """``parler/``: a DatasetDict (train/validation/test) with the 44.1 kHz audio embedded as WAV bytes."""
    import datasets

    features = datasets.Features({
        "audio": datasets.Audio(sampling_rate=rate),
        **{c: datasets.Value("float32") if c in ("duration", "utterance_pitch_mean", "utterance_pitch_std",
                                                 "speaking_rate", "snr", "c50") else datasets.Value("string")
           for c in PARLER_COLUMNS},
    })
    tmp = paths.root / ".parler.part"
    cache = paths.root / ".hf_cache"
    shutil.rmtree(tmp, ignore_errors=True)
    splits = {}
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]

        def gen(part=part):
            for r in part:
                wav = paths.root / r["audio_path"]
                yield {"audio": {"bytes": wav.read_bytes(), "path": Path(r["audio_path"]).name},
                       **{c: r.get(c) for c in PARLER_COLUMNS}}

        if part:
            splits[split] = datasets.Dataset.from_generator(gen, features=features, cache_dir=str(cache),
                                                            keep_in_memory=False)
        else:
            splits[split] = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    # an empty split gets one shard: left to estimate its size, datasets divides by its zero rows
    datasets.DatasetDict(splits).save_to_disk(str(tmp), num_shards={k: 1 for k, d in splits.items() if not len(d)})
    shutil.rmtree(paths.parler_hf, ignore_errors=True)
    os.replace(tmp, paths.parler_hf)
    shutil.rmtree(cache, ignore_errors=True)


def export_ljspeech(paths: DatasetPaths, rows: list[dict[str, Any]]) -> None:
    """``ljspeech/``: metadata.csv (all kept items) and one file per split, ``id|text|text`` (Coqui's
    ``ljspeech`` formatter reads the third column), plus ``speakers.csv`` (id|speaker) for multi-speaker use."""
    root = paths.ljspeech
    root.mkdir(parents=True, exist_ok=True)

    def lines(part):
        return "".join(f"{r['file_id']}|{_one_line(r['text'])}|{_one_line(r['text'])}\n" for r in part)

    _atomic_text(root / "metadata.csv", lines(rows))
    for split, name in LJ_SPLIT_FILES.items():
        _atomic_text(root / name, lines([r for r in rows if r["split"] == split]))
    _atomic_text(root / "speakers.csv", "".join(f"{r['file_id']}|{r['speaker']}\n" for r in rows))


def _one_line(text: str) -> str:
    return text.replace("|", " ").replace("\n", " ")


def export_pocket(paths: DatasetPaths, rows: list[dict[str, Any]]) -> None:
    """``pocket/<split>.json``: lists of {audio_path (relative to pocket/), text, language, duration, speaker, id}."""
    paths.pocket.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        items = [{"audio_path": str(Path(r["files"]["pocket"]).relative_to("pocket")), "text": r["text"],
                  "language": r["language"], "duration": r["duration"], "speaker": r["speaker"], "id": r["id"]}
                 for r in rows if r["split"] == split]
        _atomic_text(paths.pocket_manifest(split), json.dumps(items, ensure_ascii=False, indent=1))


def compute_stats(rows: list[dict[str, Any]], rejected: list[dict[str, Any]], *, read: int) -> dict[str, Any]:
    """Hours, utterances, speakers, rejected counts by reason, split sizes and per-speaker counts."""
    durations = [r["duration"] for r in rows]
    by_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    return {
        "read": read, "kept": len(rows), "rejected": len(rejected),
        "hours": round(sum(durations) / 3600, 4),
        "utterances": len(rows),
        "speakers": len({r["speaker"] for r in rows}),
        "per_speaker": dict(Counter(r["speaker"] for r in rows).most_common()),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected).most_common()),
        "splits": {s: len(v) for s, v in by_split.items()},
        "split_hours": {s: round(sum(r["duration"] for r in v) / 3600, 4) for s, v in by_split.items()},
        "duration_s": {"min": min(durations, default=0), "max": max(durations, default=0),
                       "mean": round(sum(durations) / len(durations), 3) if durations else 0},
    }


def duration_histogram(rows: list[dict[str, Any]], path: str | os.PathLike | None = None, title: str = ""):
    """A matplotlib figure (no pyplot, so no backend is touched) of the utterance durations; saved to ``path``
    when given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.hist([r["duration"] for r in rows], bins=30, color="#4a7ab8")
    ax.set_xlabel("duration after trimming (s)")
    ax.set_ylabel("utterances")
    ax.set_title(title or "Duration histogram")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
