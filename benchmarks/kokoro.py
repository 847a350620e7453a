"""Real-time factor and peak memory of the offline Kokoro backend (int8 ONNX on onnxruntime, CPU).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/kokoro.py --threads 2 --repeats 3

RTF = synthesis wall time / audio duration (G2P included, model load excluded), median and best of the repeats;
CPU RTF uses the process CPU time instead, which is less sensitive to other jobs on a shared machine. Peak memory is the process's maximum
resident set size. The target is RTF <= 0.5 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

# this file is named kokoro.py: keep its folder off the import path so that `import kokoro` finds the library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

HINDI = ("भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं। हर राज्य की अपनी संस्कृति और परंपरा है। "
         "लोग त्योहारों को बड़े उत्साह से मनाते हैं।")


def rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (cores)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--voice", default="jf_alpha")
    args = p.parse_args()

    from nbhelpers.kokoro.backends import OnnxBackend
    from nbhelpers.kokoro.synth import Speaker, resolve_voice
    from nbhelpers.kokoro.text import g2p_for, load_script

    base = rss_mib()
    t0 = time.perf_counter()
    speaker = Speaker(OnnxBackend(threads=args.threads), "benchmark")
    g2p_for("en-us"), g2p_for("hi")
    load_s = time.perf_counter() - t0
    voice = resolve_voice(speaker.backend, args.voice)
    sections, _ = load_script("example")
    cases = [("en-us", "example review (5 sections)", " ".join(s.text for s in sections)), ("hi", "Hindi paragraph", HINDI)]
    speaker.speak("Warm up.", voice)  # first-run allocations
    rows = []
    for lang, name, text in cases:
        walls, cpus, audio_s = [], [], 0.0
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            audio, _ = speaker.speak(text, voice, lang=lang)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            audio_s = len(audio) / 24_000
        rows.append({"text": name, "lang": lang, "audio_s": round(audio_s, 2),
                     "wall_s": round(statistics.median(walls), 2), "rtf": round(statistics.median(walls) / audio_s, 3),
                     "best_rtf": round(min(walls) / audio_s, 3),
                     "cpu_rtf": round(statistics.median(cpus) / audio_s, 3)})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"threads": args.threads, "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
              "model_and_g2p_load_s": round(load_s, 2), "rss_before_mib": round(base), "peak_rss_mib": round(peak),
              "rows": rows}
    print(json.dumps(result, indent=1, ensure_ascii=False))
    print("\n| text | audio s | wall s (median) | RTF median | RTF best | CPU RTF |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['text']} ({r['lang']}) | {r['audio_s']} | {r['wall_s']} | {r['rtf']} | {r['best_rtf']} | "
              f"{r['cpu_rtf']} |")
    print(f"\npeak RSS {peak:.0f} MiB (process, includes torch/spaCy imports: {base:.0f} MiB before loading); "
          f"load {load_s:.1f} s; {args.threads} threads; 1-min load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
