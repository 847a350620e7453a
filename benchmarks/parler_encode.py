"""Stage 02's audio-code encoding with 1 and with N processes, side by side in one run, on the same clips and codec:
wall time, rows per second and whether the codes are identical (they must be).

The codec is DAC 44.1 kHz with random weights: ``--codec real`` has upstream's widths (the 77 M-parameter codec every
Parler-TTS checkpoint carries, 9 codebooks), ``--codec tiny`` the smoke model's (process start-up dominates). Clips
are seeded noise of ``--min-seconds``..``--max-seconds``, so nothing is downloaded.

  python benchmarks/parler_encode.py --codec real --clips 24 --workers 2           # CPU: processes share the cores
  python benchmarks/parler_encode.py --codec real --clips 400 --workers 2 --device cuda   # one process per GPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clips(n: int, lo: float, hi: float, sr: int = 44100):
    """A Dataset of ``n`` seeded noise clips with an ``audio`` and a ``duration`` column, like data prep writes."""
    import datasets
    import numpy as np

    rng = np.random.default_rng(0)
    durations = rng.uniform(lo, hi, n)
    rows = {"audio": [{"array": (0.1 * rng.standard_normal(int(d * sr))).astype(np.float32), "sampling_rate": sr}
                      for d in durations], "duration": durations.tolist(), "id": [f"clip{i}" for i in range(n)]}
    features = datasets.Features({"audio": datasets.Audio(sampling_rate=sr), "duration": datasets.Value("float32"),
                                  "id": datasets.Value("string")})
    return datasets.Dataset.from_dict(rows, features=features)


def bundle(codec: str):
    """The tiny smoke model, or one whose DAC has upstream's real widths (text encoder and decoder stay tiny)."""
    from parler_tts import ParlerTTSForConditionalGeneration

    from nbhelpers.parler.model import ParlerBundle, build_tiny, tiny_config

    if codec == "tiny":
        return build_tiny(0)
    config = tiny_config(codebooks=9, codebook_size=1024)
    audio = config.audio_encoder.to_dict()
    for key in ("encoder_dim", "decoder_dim"):  # the DAC's defaults: 64 / 1536
        audio.pop(key, None)
    config.audio_encoder = type(config.audio_encoder).from_dict(audio)
    model = ParlerTTSForConditionalGeneration(config)
    tiny = build_tiny(0)
    return ParlerBundle(model, tiny.prompt_tokenizer, tiny.description_tokenizer, "real-dac")


def main(argv: list[str] | None = None) -> int:
    import torch

    from nbhelpers.parler.codes import encode_split, worker_devices

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", choices=("tiny", "real"), default="real")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=6.0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="processes of the second run (0: one per GPU)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args(argv)

    b = bundle(args.codec)
    b.model.to(args.device)
    data = clips(args.clips, args.min_seconds, args.max_seconds)
    audio_seconds = float(sum(data["duration"]))
    rows, first = [], None
    for workers in (1, args.workers):
        t = time.perf_counter()
        codes = encode_split(b, data, batch_size=args.batch, device=args.device, workers=workers)
        wall = time.perf_counter() - t
        first = first or codes
        rows.append({"processes": len(worker_devices(args.device, workers)), "wall_s": round(wall, 2),
                     "clips_per_s": round(len(data) / wall, 2), "audio_s_per_s": round(audio_seconds / wall, 1),
                     "same_codes_as_1": all(torch.equal(a, c) for a, c in zip(first, codes, strict=True))})
    print(f"codec {args.codec} ({sum(p.numel() for p in b.model.audio_encoder.parameters()) / 1e6:.1f} M params), "
          f"{len(data)} clips, {audio_seconds:.0f} s of audio, batch {args.batch}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    print("| processes | wall s | clips/s | audio s/s | same codes as 1 process |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['wall_s']} | {r['clips_per_s']} | {r['audio_s_per_s']} | {r['same_codes_as_1']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["same_codes_as_1"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
