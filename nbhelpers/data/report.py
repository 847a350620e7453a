"""What notebook 01 shows, written by the stage into ``<workspace>/data/_report/``: the sources table, and after a
run one ``report.json`` (summary, kept and quarantined items with every column, a few utterances to play, splits,
Parler descriptions, output files) plus ``speakers.png``. The notebook kernel only reads and displays them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import Workspace
from ..records import write_json

if TYPE_CHECKING:
    from .pipeline import PrepareResult

REPORT_DIR = "_report"
SHOW_KEPT = 8          # kept rows per dataset in the report table (the manifest has them all)
SHOW_QUARANTINE = 200  # quarantined rows in the report table (quarantine.jsonl has them all)
EXAMPLES = 3           # utterances per dataset with an audio player
# Rejected items worth hearing, most telling first (unreadable/empty files cannot be played).
PLAY_REJECTED = ("clipped", "wrong_script", "text_audio_mismatch", "duration_mismatch", "too_long", "too_short",
                 "duplicate_id", "silent")
DESCRIPTION_COLUMNS = ("id", "speaker", "utterance_pitch_mean", "speaking_rate", "snr", "c50", "pitch", "speed",
                       "noise", "reverberation", "speech_monotony", "text_description")


def report_dir(workspace: Workspace) -> Path:
    return workspace.root / "data" / REPORT_DIR


def selected_datasets(params: dict[str, Any], only: str | list[str] | None = None) -> list[str]:
    """The datasets a run prepares: ``only`` (a comma-separated string or a list) or the profile's list; names
    the profile does not know are an error that lists the known ones."""
    if isinstance(only, str):
        only = [n.strip() for n in only.split(",") if n.strip()]
    names = list(only or params["datasets"])
    unknown = [n for n in names if n not in params["sources"]]
    if unknown:
        raise KeyError(f"dataset(s) {unknown} are not in profile {params['profile']!r}; known: "
                       f"{', '.join(params['sources'])}")
    return names


def sources_rows(params: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """One row per dataset: name and every key of its profile source."""
    return [{"dataset": n, **params["sources"][n]} for n in names]


def write_sources(params: dict[str, Any], names: list[str], workspace: Workspace) -> Path:
    """``_report/sources.json``: the sources table and the settings line the notebook shows before preparing."""
    settings = {k: params[k] for k in ("profile", "workers", "vad", "target_lufs", "strict", "split_fractions",
                                       "speaker_disjoint") if k in params}
    return write_json(report_dir(workspace) / "sources.json",
                       {"settings": settings, "sources": sources_rows(params, names)})


def _spread(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` rows taking speakers in turn (so every speaker appears), in manifest order within each."""
    by_speaker: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_speaker.setdefault(str(r.get("speaker")), []).append(r)
    out: list[dict[str, Any]] = []
    queues = list(by_speaker.values())
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def speakers_chart(results: dict[str, PrepareResult], path: Path) -> Path:
    """Bar chart of utterances per speaker, one panel per dataset (Agg, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 4.5 * len(results)), 3.4))
    axes = fig.subplots(1, max(1, len(results)), squeeze=False)[0]
    for ax, (name, r) in zip(axes, results.items(), strict=False):
        speakers = r.stats["per_speaker"]
        ax.bar(list(speakers), list(speakers.values()), color="#4a7ab8")
        ax.set_title(f"{name}: utterances per speaker", fontsize=10)
        ax.set_xlabel("speaker")
        ax.set_ylabel("utterances (kept)")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path


def build_report(results: dict[str, PrepareResult], *, show_kept: int = SHOW_KEPT,
                 show_quarantine: int = SHOW_QUARANTINE, examples: int = EXAMPLES) -> dict[str, Any]:
    """The tables notebook 01 shows, as JSON-ready rows (paths absolute, so the kernel can play the audio)."""
    summary, kept, quarantine, players, rejected_players, splits, descriptions, files, histograms = \
        [], [], [], [], [], [], [], [], []
    total_rejected = 0
    for name, r in results.items():
        st, root = r.stats, r.paths.root
        summary.append({"dataset": name, "read": st["read"], "kept": st["kept"], "rejected": st["rejected"],
                        "rejected by reason": st["rejected_by_reason"], "minutes": round(st["hours"] * 60, 2),
                        "speakers": st["speakers"], **st["splits"], "reused": r.reused, "seconds": round(r.seconds, 1)})
        kept += [{"dataset": name, **row} for row in _spread(r.kept, show_kept)]
        total_rejected += len(r.rejected)
        quarantine += [{"dataset": name, **q} for q in r.rejected]
        for row in _spread(r.kept, examples):
            players.append({"dataset": name, "id": row["id"], "speaker": row["speaker"], "split": row["split"],
                            "duration": row["duration"], "raw_text": row["raw_text"], "text": row["text"],
                            "audio": str(root / row["files"]["ljspeech"]),
                            "caption": f"**{name}** `{row['id']}` ({row['speaker']}, {row['duration']:.2f} s, "
                                       f"{row['split']}): {row['text']}"})
        playable = sorted((q for q in r.rejected if q.get("audio") and Path(q["audio"]).is_file()
                           and q["reason"] in PLAY_REJECTED), key=lambda q: PLAY_REJECTED.index(q["reason"]))
        for q in playable[:2]:
            rejected_players.append({"dataset": name, "id": q["id"], "reason": q["reason"], "audio": q["audio"],
                                     "caption": f"**{name}** `{q['id']}` rejected as *{q['reason']}*: {q['detail']}"})
        splits.append({"dataset": name, **st["splits"],
                       **{f"{k} min": round(v * 60, 2) for k, v in st["split_hours"].items()}})
        seen: set[str] = set()
        for row in r.kept:
            if row.get("speaker") not in seen and "text_description" in row:
                seen.add(row["speaker"])
                descriptions.append({"dataset": name, **{c: row.get(c) for c in DESCRIPTION_COLUMNS}})
        files += [{"dataset": name, "path": str(p.relative_to(root)) + ("/" if p.is_dir() else ""),
                   "kind": "folder" if p.is_dir() else "file"}
                  for p in sorted(root.iterdir()) if not p.name.startswith(".")]
        histogram = root / "duration_histogram.png"
        if histogram.is_file():
            histograms.append({"dataset": name, "path": str(histogram)})
    return {"summary": summary, "kept": kept, "quarantine": quarantine[:show_quarantine],
            "quarantine_total": total_rejected, "examples": players, "rejected_examples": rejected_players,
            "splits": splits, "descriptions": descriptions, "files": files, "histograms": histograms,
            "roots": {n: str(r.paths.root) for n, r in results.items()}}


def write_report(results: dict[str, PrepareResult], workspace: Workspace) -> dict[str, Path]:
    """Write ``_report/report.json`` and ``_report/speakers.png``; return the paths for the stage record."""
    folder = report_dir(workspace)
    report = build_report(results)
    out = {"report": write_json(folder / "report.json", report),
           "speakers_png": speakers_chart(results, folder / "speakers.png")}
    out.update({f"{h['dataset']}_histogram": Path(h["path"]) for h in report["histograms"]})
    return out
