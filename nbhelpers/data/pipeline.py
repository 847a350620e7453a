"""The data-prep pipeline: read a source, clean and validate every item (in parallel, reusing items already
processed), quarantine what fails, split, annotate, export, and mark the dataset complete last."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
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
ITEM_CACHE = ".items.jsonl"  # one line per finished item: {"key": item_key, "record": kept or rejected record}


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


def _work(job: tuple[int, Utterance, CleanConfig, str]) -> tuple[int, dict[str, Any], dict[str, float]]:
    """Clean one item; an unexpected error quarantines that item (processing_error) instead of ending the run."""
    pos, utt, cfg, root = job
    timings: dict[str, float] = {}
    try:
        return pos, clean_item(utt, cfg, Path(root), timings), timings
    except Exception as err:  # a bug or an exotic file must not cost the other items: named row instead
        rec = {"status": "rejected", **rejection(utt.id, utt.source, "processing_error",
                                                 f"{type(err).__name__}: {str(err)[:200]}")}
        return pos, rec, timings


def _worker_init() -> None:
    """In each worker: leave Ctrl-C to the parent (which stops the pool), and exit when the parent is gone
    (SIGKILL of the parent cannot clean up, so the workers watch for it themselves)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker_loop(jobs: Any, results: Any) -> None:
    """A worker process: clean items from ``jobs`` until the None sentinel, reporting each to ``results``."""
    _worker_init()
    while (job := jobs.get()) is not None:
        results.put(_work(job))


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}: finished items are kept for the next run")


def _run_workers(jobs: list[Any], workers: int, ctx: Any, desc: str, take: Callable[[Any], None]) -> None:
    """Feed ``jobs`` to ``workers`` processes and ``take`` each result as it arrives. The processes are this
    call's own, so whatever ends it (an exception, Ctrl-C, SIGTERM, a worker that died) kills and reaps them."""
    todo, results = ctx.Queue(), ctx.Queue()
    todo.cancel_join_thread()  # exiting must not wait to hand jobs to workers that were stopped
    procs = [ctx.Process(target=_worker_loop, args=(todo, results), daemon=True) for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for job in [*jobs, *[None] * workers]:
            todo.put(job)
        for _ in tqdm(range(len(jobs)), desc=desc, leave=False):
            while True:
                try:
                    done = results.get(timeout=1.0)
                    break
                except queue.Empty:
                    dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a data-prep worker process died (exit code {dead[0]}; -9 is usually "
                                           f"out of memory): finished items are kept; rerun, with fewer workers "
                                           f"if memory is short") from None
            take(done)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        for proc in procs:
            proc.join()


def _preload(cfg: CleanConfig) -> None:
    """Import the workers' heavy modules once in the parent, so forked workers start with them loaded."""
    import pyloudnorm  # noqa: F401
    import soxr  # noqa: F401

    from .audio import silero_available

    if cfg.vad != "energy" and silero_available():
        import onnxruntime  # noqa: F401


def process_items(utts: list[Utterance], cfg: CleanConfig, root: Path, *, workers: int = 2, desc: str = "clean",
                  on_result: Callable[[int, dict[str, Any]], None] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run :func:`clean_item` on every utterance, in ``workers`` processes when there is enough work; results in
    input order. ``on_result(index, record)`` is called as each item finishes (the durable item cache). The
    worker processes end with the call, however it ends (exception, Ctrl-C, SIGTERM; SIGKILL: within a second)."""
    jobs = [(i, u, cfg, str(root)) for i, u in enumerate(utts)]
    timings: dict[str, float] = {}
    results: list[dict[str, Any] | None] = [None] * len(jobs)

    def take(done: tuple[int, dict[str, Any], dict[str, float]]) -> None:
        pos, rec, t = done
        results[pos] = rec
        if on_result is not None:
            on_result(pos, rec)
        for k, v in t.items():
            timings[k] = timings.get(k, 0.0) + v

    if workers > 1 and len(jobs) >= 8:
        # fork reuses the parent's imports (fast start); forkserver where torch is loaded (fork-unsafe threads)
        ctx = mp.get_context("forkserver" if "torch" in sys.modules else "fork")
        _preload(cfg)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main_thread else None
        try:
            _run_workers(jobs, workers, ctx, desc, take)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
    else:
        for job in tqdm(jobs, desc=desc, leave=False):
            take(_work(job))
    return results, timings


class _ItemCache:
    """The per-item cache: one JSON line per finished item, appended and flushed as items finish, so a run that
    is killed keeps everything it finished; a torn last line (a kill mid-write) is skipped when read."""

    def __init__(self, *sources: Path):
        self.records: dict[str, dict[str, Any]] = {}
        for path in sources:
            if not path.is_file():
                continue
            for line in path.read_bytes().split(b"\n"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # torn or damaged line: that item is simply processed again
                if isinstance(entry, dict) and isinstance(entry.get("record"), dict):
                    self.records[str(entry.get("key"))] = entry["record"]

    @staticmethod
    def line(key: str, rec: dict[str, Any]) -> str:
        """One cache line, in :func:`write_jsonl`'s format."""
        return json.dumps({"key": key, "record": rec}, ensure_ascii=False) + "\n"

    @staticmethod
    def open_for_append(path: Path) -> Any:
        """The cache file opened for appending, starting on a fresh line after a torn one."""
        torn = path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
        f = path.open("a", encoding="utf-8")
        if torn:
            f.write("\n")
        return f


def _link_outputs(rec: dict[str, Any], stage: Path, complete: Path) -> bool:
    """Make a cached kept item's WAVs present in the version being built: already there (an interrupted run made
    them), or hard-linked from the complete version (no copy, no extra disk; copied where links are refused).
    False if one is gone from both, so the item is processed again."""
    for rel in rec["files"].values():
        target, origin = stage / rel, complete / rel
        if target.is_file():
            continue
        if not origin.is_file():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(origin, target)
        except OSError:
            shutil.copy2(origin, target)
    return True


def _remove_stale_wavs(root: Path, kept: list[dict[str, Any]]) -> None:
    """Delete WAVs of items no longer kept (rejected or removed from the source since an earlier run)."""
    wanted = {root / f for r in kept for f in r["files"].values()}
    for folder in WAV_DIRS.values():
        for wav in (root / folder).glob("*.wav") if (root / folder).is_dir() else ():
            if wav not in wanted:
                wav.unlink()


def _versions(final: Path) -> tuple[Path, Path]:
    """Where a new version of ``final`` is built (kept across interrupted runs) and where the previous version
    waits during the swap."""
    return final.with_name(f".{final.name}.partial"), final.with_name(f".{final.name}.old")


def _recover(final: Path) -> None:
    """Finish or undo a swap that a kill interrupted: between its two renames neither version is at ``final``;
    the complete new version goes there if it exists, else the previous one goes back."""
    stage, old = _versions(final)
    if old.exists():
        if not final.exists():
            os.replace(stage if (stage / "PREPARED.json").is_file() else old, final)
        shutil.rmtree(old, ignore_errors=True)


def _reset_partial(stage: Path) -> None:
    """Keep only what a build left in ``stage`` can give the next one, its item cache and WAVs: an export,
    stats or marker it wrote must never be swapped in as if the next run had made it."""
    keep = [stage / ITEM_CACHE, *(stage / d for d in WAV_DIRS.values())]

    def prune(folder: Path) -> None:
        for path in folder.iterdir():
            if path in keep:
                continue
            if any(path in k.parents for k in keep):
                prune(path)
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    if stage.is_dir():
        prune(stage)


def _swap_in(final: Path) -> None:
    """Replace the complete version at ``final`` by the finished build: two renames (the window between them is
    handled by :func:`_recover`), then the old version is deleted."""
    stage, old = _versions(final)
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)


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

    The new version is built in ``data/.<name>.partial/`` and swapped in only when complete, so a failed run
    (an empty or all-rejected source, strict mode, a crash, a kill) leaves the earlier version as it was.
    Re-running reuses every item whose audio, text and settings are unchanged, including items an interrupted
    run finished. ``strict`` raises one :class:`DataValidationError` listing all rejected items (after writing
    the new quarantine.jsonl, named in the message); otherwise they are quarantined and the rest is exported.
    ``read == kept + rejected`` always holds (checked). ``max_items`` > 0 reads only that many source rows,
    spread evenly over the source (every speaker and archive keeps a share).
    """
    t0 = time.perf_counter()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    cfg = clean or CleanConfig()
    final = DatasetPaths.in_workspace(name, ws).root
    final.parent.mkdir(parents=True, exist_ok=True)
    _recover(final)
    unchanged = f"\nThe dataset prepared earlier, {final}, is unchanged." if (final / "PREPARED.json").is_file() else ""

    utts = read_source(source, language, format=format, **(reader_options or {}))
    in_source = len(utts)
    if not utts:
        raise DataValidationError(f"{name}: the source {source} (format {format}) has no rows, so nothing was "
                                  f"prepared. Point it at the corpus itself (the unzipped folder, the manifest or "
                                  f"TSV that lists the clips) and check that file is not empty.{unchanged}")
    utts = select_items(utts, max_items)
    read = len(utts)
    stage, _ = _versions(final)
    paths = DatasetPaths(stage)  # the new version is built aside and swapped in when complete
    _reset_partial(stage)
    stage.mkdir(exist_ok=True)
    cache_file = stage / ITEM_CACHE
    cache = _ItemCache(final / ITEM_CACHE, cache_file)
    seen: set[str] = set()
    records: list[dict[str, Any] | None] = []
    keys: list[str | None] = []
    todo: list[int] = []
    reused = 0
    for utt in utts:
        if utt.id in seen:
            records.append({"status": "rejected", **rejection(utt.id, utt.source, "duplicate_id",
                                                              "an earlier row has the same id")})
            keys.append(None)
            continue
        seen.add(utt.id)
        key = item_key(utt, cfg)
        keys.append(key)
        rec = dict(cache.records[key]) if key in cache.records else None
        if rec is not None and (rec.get("status") != "kept" or _link_outputs(rec, stage, final)):
            reused += 1
            rec["source"] = utt.source
            records.append(rec)
        else:
            records.append(None)
            todo.append(len(records) - 1)
    with _ItemCache.open_for_append(cache_file) as log:
        def done(i: int, rec: dict[str, Any]) -> None:
            log.write(_ItemCache.line(keys[todo[i]], rec))
            log.flush()

        fresh, timings = process_items([utts[pos] for pos in todo], cfg, stage, workers=workers,
                                       desc=f"clean {name}", on_result=done)
    for pos, rec in zip(todo, fresh, strict=True):
        records[pos] = rec
    # compacted: exactly this run's items (the complete version's cache is replaced with it at the swap)
    write_jsonl(cache_file, [{"key": k, "record": r} for k, r in zip(keys, records, strict=True) if k])

    kept = [r for r in records if r["status"] == "kept"]
    rejected = [{k: v for k, v in r.items() if k != "status"} for r in records if r["status"] == "rejected"]
    if read != len(kept) + len(rejected):
        raise AssertionError(f"counts do not reconcile: read {read} != kept {len(kept)} + rejected {len(rejected)}")
    write_jsonl(paths.quarantine, rejected)
    if not kept:
        raise DataValidationError(f"{name}: nothing usable in {source}: {summary(rejected, read=read, kept=0)}\n"
                                  f"Full list: {paths.quarantine}{unchanged}")
    if strict and rejected:
        raise DataValidationError(f"{name}: strict mode, {summary(rejected, read=read, kept=len(kept))}\n"
                                  f"Full list: {paths.quarantine}{unchanged}")

    split_of = assign_splits([r["id"] for r in kept], [r["speaker"] for r in kept], fractions=split_fractions,
                             speaker_disjoint=speaker_disjoint, salt=split_salt)
    for r in kept:
        r.pop("status", None)
        r["split"] = split_of[r["id"]]
    if cfg.annotate:
        describe(kept, bin_edges, speaker_names)
    kept.sort(key=lambda r: r["id"])
    _remove_stale_wavs(stage, kept)
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
    _swap_in(final)
    paths = DatasetPaths(final)
    return PrepareResult(paths, stats, kept, rejected, reused=reused, processed=len(todo), seconds=seconds,
                         timings=timings)
