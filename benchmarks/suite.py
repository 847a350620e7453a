"""Suite benchmark (stage 06): every discovered system/backend measured with nbhelpers.bench, printed as a table.

    PYTHONPATH=. .venv/bin/python benchmarks/suite.py --workspace /tmp/ws --profile smoke
    PYTHONPATH=. python benchmarks/suite.py --harness-check --device cuda:0   # on a GPU machine

The first form runs ``run_benchmark`` on a workspace where stages 01-05 ran (it writes <workspace>/bench/...) and
prints the Markdown table of this run. ``--harness-check`` needs only torch: it drives the harness with a
synthetic generator (a random 1-D transposed-convolution stack that upsamples 86 frames/s to 22.05 kHz, i.e. a
vocoder-shaped load, no TTS quality) in fp32 and fp16, to show what the harness measures on a device: latency,
RTF, peak CUDA memory and NVML energy. Its numbers describe the harness on that hardware, not any TTS system.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def harness_check(device: str, repeats: int) -> None:
    """Synthetic vocoder-shaped workload through measure_synthesis in float32 and (on CUDA) float16."""
    import torch

    from nbhelpers.measure.harness import measure_synthesis

    torch.manual_seed(0)
    layers, ch = [], 512
    for stride in (8, 8, 4):  # 86 frames/s x 256 = 22016 samples/s
        layers += [torch.nn.ConvTranspose1d(ch, ch // 2, stride * 2, stride, stride // 2), torch.nn.LeakyReLU(0.1)]
        ch //= 2
    layers += [torch.nn.Conv1d(ch, 1, 7, padding=3), torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers).eval().to(device)
    texts = ["a short sentence of about two seconds.", "a much longer sentence that should take about four "
             "seconds or so to say aloud.", "and a third one in the middle."]
    dtypes = ["float32"] + (["float16"] if device.startswith("cuda") else [])
    for dtype in dtypes:
        model = net.to(getattr(torch, dtype))

        def synth(text: str, m=model, dt=dtype) -> tuple:
            frames = 86 * max(1, len(text) // 12)
            x = torch.randn(1, 512, frames, device=device, dtype=getattr(torch, dt))
            with torch.inference_mode():
                y = m(x)[0, 0].float().cpu().numpy()
            return y, 22_016

        rec = measure_synthesis("synthetic-upsampler", "torch", synth, texts, dtype=dtype, device=device, warmup=3,
                                repeats=repeats, model=model, progress=False)
        keys = ("device", "gpu", "dtype", "rtf", "latency_s_median", "latency_s_p90", "peak_rss_mib", "peak_cuda_mib",
                "params", "energy_j_per_audio_s", "mean_power_w")
        print(json.dumps({k: rec[k] for k in keys} | {"not_available": rec["not_available"]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--systems", default="")
    parser.add_argument("--overrides", default="", help="JSON of bench profile overrides")
    parser.add_argument("--harness-check", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.harness_check:
        harness_check(args.device, args.repeats)
        return 0
    from nbhelpers.bench.report import markdown_table
    from nbhelpers.bench.run import run_benchmark
    from nbhelpers.measure.harness import read_records

    summary = run_benchmark(args.profile, args.workspace, systems=[s for s in args.systems.split(",") if s] or None,
                            overrides=json.loads(args.overrides) if args.overrides else None)
    records = [r for r in read_records(summary["records_path"]) if r.get("run") == summary["run"]]
    print(markdown_table(records))
    for label, why in summary["failures"].items():
        print(f"FAILED {label}: {why}")
    print(f"report: {summary['report_md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
