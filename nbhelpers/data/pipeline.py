"""The data-prep pipeline: read a source, clean and validate every item (in parallel, reusing items already
processed), quarantine what fails, split, annotate, export, and mark the dataset complete last."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..paths import Workspace
from .annotate import describe
from .clean import WAV_DIRS, CleanConfig, clean_item, item_key
from .export import compute_stats, duration_histogram, export_ljspeech, export_parler, export_pocket, write_jsonl
from .layout import DatasetPaths
from .sources import Utterance, read_source
from .splits import assign_splits
from .validate import DataValidationError, rejection, summary

HISTOGRAM = "duration_histogram.png"


@dataclass
class PrepareResult:
    paths: DatasetPaths
    stats: dict[str, Any]
    kept: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    reused: int = 0
    processed: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def _work(job: tuple[Utterance, CleanConfig, str]) -> tuple[dict[str, Any], dict[str, float]]:
    utt, cfg, root = job
    timings: dict[str, float] = {}
    return clean_item(utt, cfg, Path(root), timings), timings


def _preload(cfg: CleanConfig) -> None:
    """Import the workers' heavy modules once in the parent, so forked workers start with them loaded."""
    import pyloudnorm  # noqa: F401
    import soxr  # noqa: F401

    from .audio import silero_available

    if cfg.vad != "energy" and silero_available():
        import onnxruntime  # noqa: F401


def process_items(utts: list[Utterance], cfg: CleanConfig, root: Path, *, workers: int = 2,
                  desc: str = "clean") -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run :func:`clean_item` on every utterance, in ``workers`` processes when there is enough work."""
    jobs = [(u, cfg, str(root)) for u in utts]
    timings: dict[str, float] = {}
    results = []
    if workers > 1 and len(jobs) >= 8:
        # fork reuses the parent's imports (fast start); forkserver where torch is loaded (fork-unsafe threads)
        ctx = mp.get_context("forkserver" if "torch" in sys.modules else "fork")
        _preload(cfg)
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for rec, t in tqdm(pool.map(_work, jobs, chunksize=max(1, min(16, len(jobs) // (workers * 4)))),
                               total=len(jobs), desc=desc, leave=False):
                results.append(rec)
                for k, v in t.items():
                    timings[k] = timings.get(k, 0.0) + v
    else:
        for job in tqdm(jobs, desc=desc, leave=False):
            rec, t = _work(job)
            results.append(rec)
            for k, v in t.items():
                timings[k] = timings.get(k, 0.0) + v
    return results, timings


def _cached(cache_dir: Path, key: str, root: Path) -> dict[str, Any] | None:
    path = cache_dir / f"{key}.json"
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if rec.get("status") == "kept" and not all((root / f).is_file() for f in rec["files"].values()):
        return None
    return rec


def _remove_stale_wavs(root: Path, kept: list[dict[str, Any]]) -> None:
    """Delete WAVs of items no longer kept (rejected or removed from the source since an earlier run)."""
    wanted = {root / f for r in kept for f in r["files"].values()}
    for folder in WAV_DIRS.values():
        for wav in (root / folder).glob("*.wav") if (root / folder).is_dir() else ():
            if wav not in wanted:
                wav.unlink()


def select_items(utts: list[Utterance], max_items: int) -> list[Utterance]:
    """At most ``max_items`` utterances (0 = all), evenly spaced over the list, order kept."""
    if max_items <= 0 or len(utts) <= max_items:
        return utts
    return [utts[i * len(utts) // max_items] for i in range(max_items)]


def prepare(source: str | os.PathLike, name: str, language: str, *, workspace: Workspace | str | None = None,
            format: str = "auto", reader_options: dict[str, Any] | None = None, clean: CleanConfig | None = None,
            split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), speaker_disjoint: bool = False,
            split_salt: str = "tts-suite", bin_edges: dict[str, list[float]] | None = None,
            speaker_names: dict[str, str] | None = None, workers: int = 2, strict: bool = False,
            exports: tuple[str, ...] = ("parler", "ljspeech", "pocket"), max_items: int = 0) -> PrepareResult:
    """Turn ``source`` into the prepared dataset ``<workspace>/data/<name>/`` (layout: ``layout.py``).

    Re-running reuses every item whose audio, text and settings are unchanged. ``strict`` raises one
    :class:`DataValidationError` listing all rejected items (after writing quarantine.jsonl); otherwise they are
    quarantined and the rest is exported. ``read == kept + rejected`` always holds (checked). ``max_items`` > 0
    reads only that many source rows, spread evenly over the source (every speaker and archive keeps a share).
    """
    t0 = time.perf_counter()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    cfg = clean or CleanConfig()
    paths = DatasetPaths.in_workspace(name, ws)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.complete_marker.unlink(missing_ok=True)  # from here on the folder is partial
    cache_dir = paths.root / ".items"
    cache_dir.mkdir(exist_ok=True)

    utts = read_source(source, language, format=format, **(reader_options or {}))
    in_source = len(utts)
    utts = select_items(utts, max_items)
    read = len(utts)
    seen: set[str] = set()
    records: list[dict[str, Any] | None] = []
    todo: list[tuple[int, str, Utterance]] = []
    reused = 0
    for utt in utts:
        if utt.id in seen:
            records.append({"status": "rejected", **rejection(utt.id, utt.source, "duplicate_id",
                                                              "an earlier row has the same id")})
            continue
        seen.add(utt.id)
        key = item_key(utt, cfg)
        rec = _cached(cache_dir, key, paths.root)
        if rec is not None:
            reused += 1
            rec["source"] = utt.source
            records.append(rec)
        else:
            records.append(None)
            todo.append((len(records) - 1, key, utt))
    fresh, timings = process_items([u for _, _, u in todo], cfg, paths.root, workers=workers, desc=f"clean {name}")
    for (pos, key, _), rec in zip(todo, fresh, strict=True):
        records[pos] = rec
        tmp = cache_dir / f"{key}.json.part"
        tmp.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, cache_dir / f"{key}.json")

    kept = [r for r in records if r["status"] == "kept"]
    rejected = [{k: v for k, v in r.items() if k != "status"} for r in records if r["status"] == "rejected"]
    if read != len(kept) + len(rejected):
        raise AssertionError(f"counts do not reconcile: read {read} != kept {len(kept)} + rejected {len(rejected)}")
    write_jsonl(paths.quarantine, rejected)
    if strict and rejected:
        raise DataValidationError(f"{name}: strict mode, {summary(rejected, read=read, kept=len(kept))}\n"
                                  f"Full list: {paths.quarantine}")

    split_of = assign_splits([r["id"] for r in kept], [r["speaker"] for r in kept], fractions=split_fractions,
                             speaker_disjoint=speaker_disjoint, salt=split_salt)
    for r in kept:
        r.pop("status", None)
        r["split"] = split_of[r["id"]]
    if cfg.annotate:
        describe(kept, bin_edges, speaker_names)
    kept.sort(key=lambda r: r["id"])
    _remove_stale_wavs(paths.root, kept)
    write_jsonl(paths.manifest, kept)
    for step in tqdm(exports, desc=f"export {name}", leave=False):
        {"parler": export_parler, "ljspeech": export_ljspeech, "pocket": export_pocket}[step](paths, kept)
    stats = compute_stats(kept, rejected, read=read)
    stats.update({"name": name, "language": language, "source": str(source), "in_source": in_source,
                  "max_items": max_items, "reused": reused,
                  "processed": len(todo), "vad": sorted({r["vad"] for r in kept}), "settings": cfg.fingerprint()})
    (paths.stats).write_text(json.dumps(stats, ensure_ascii=False, indent=1), encoding="utf-8")
    duration_histogram(kept, paths.root / HISTOGRAM, title=f"{name}: {len(kept)} utterances, "
                                                          f"{stats['hours'] * 60:.1f} min")
    seconds = time.perf_counter() - t0
    marker = {"name": name, "language": language, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "kept": len(kept), "rejected": len(rejected), "splits": stats["splits"], "exports": list(exports),
              "rates": cfg.rates, "settings": cfg.fingerprint()}
    tmp = paths.complete_marker.with_name("PREPARED.json.part")
    tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")
    os.replace(tmp, paths.complete_marker)
    return PrepareResult(paths, stats, kept, rejected, reused=reused, processed=len(todo), seconds=seconds,
                         timings=timings)
