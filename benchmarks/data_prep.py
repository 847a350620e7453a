"""Data-prep throughput: seconds of source audio processed per wall-clock second, for clean+validate and for
annotation, on the embedded Kannada + Bangla corpora (repeated to get a few minutes of audio).

    PYTHONPATH=. .venv/bin/python benchmarks/data_prep.py [--workers 2] [--repeat 3] [--vad auto]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import soundfile as sf

from nbhelpers.data.clean import CleanConfig
from nbhelpers.data.corpus import build_smoke_corpus
from nbhelpers.data.pipeline import process_items
from nbhelpers.data.sources import read_source


def corpus(tmp: Path, repeat: int) -> list:
    """Both embedded corpora (no damaged items), each utterance ``repeat`` times under new ids."""
    utts = []
    for lang, layout in (("kn", "openslr"), ("bn", "ljspeech")):
        src = build_smoke_corpus(lang, tmp / f"{lang}_src", layout=layout, damaged=False)
        base = read_source(src, lang, format=layout)
        for r in range(repeat):
            for u in base:
                copy = tmp / "copies" / f"{u.id}_r{r}{Path(u.audio_path).suffix}"
                copy.parent.mkdir(parents=True, exist_ok=True)
                if not copy.exists():
                    os.link(u.audio_path, copy)
                utts.append(type(u)(**{**u.__dict__, "id": f"{u.id}_r{r}", "audio_path": str(copy)}))
    return utts


def run(utts: list, cfg: CleanConfig, workers: int, out: Path) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    records, timings = process_items(utts, cfg, out, workers=workers, desc="bench")
    wall = time.perf_counter() - t0
    kept = sum(r["status"] == "kept" for r in records)
    assert kept == len(utts), f"only {kept} of {len(utts)} kept: {[r for r in records if r['status'] != 'kept'][:2]}"
    return wall, timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vad", default="auto", choices=("auto", "silero", "energy"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        utts = corpus(tmp, args.repeat)
        audio_s = sum(sf.info(u.audio_path).duration for u in utts)
        print(f"corpus: {len(utts)} utterances, {audio_s / 60:.1f} min of source audio (kn + bn, espeak-ng, "
              f"22.05/16/44.1 kHz, mono/stereo); workers={args.workers}; cpu_count={os.cpu_count()}; "
              f"load average before={os.getloadavg()[0]:.2f}")
        w = args.workers
        wall_clean, t_clean = run(utts, CleanConfig(vad=args.vad, annotate=False), w, tmp / "out_clean")
        print(f"clean+validate : {wall_clean:6.1f} s wall -> {audio_s / wall_clean:6.1f}x real time (wall clock); "
              f"{t_clean['clean_cpu']:6.1f} CPU-s -> {audio_s / (t_clean['clean_cpu'] / w):6.1f}x on {w} dedicated cores")
        wall_full, t_full = run(utts, CleanConfig(vad=args.vad, annotate=True), w, tmp / "out_full")
        print(f"annotation     : {t_full['annotate']:6.1f} worker-s -> {audio_s / (t_full['annotate'] / w):6.1f}x real "
              f"time (wall clock); {t_full['annotate_cpu']:6.1f} CPU-s -> "
              f"{audio_s / (t_full['annotate_cpu'] / w):6.1f}x on {w} dedicated cores")
        print(f"full pipeline  : {wall_full:6.1f} s wall -> {audio_s / wall_full:6.1f}x real time (wall clock)")
        print(f"load average after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
