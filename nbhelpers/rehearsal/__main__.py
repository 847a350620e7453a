"""Run the dress rehearsal of a real profile, offline, against local stand-ins.

    python -m nbhelpers.rehearsal run --profile kaggle-t4 [--only 00,01,02] [--out DIR]

Builds the stand-ins (each in the stack whose libraries write its format), serves OpenSLR on loopback, fakes the
platform (Kaggle: a movable `/kaggle` root with a read-only input folder and Kaggle's environment variables;
Colab: its variables, no Drive), runs the notebooks in suite order on the plain kernel with the real profile and
the size-override table, then checks the chain: every stage must have consumed this run's earlier outputs and no
smoke artefact. Under kaggle-t4 (whole suite) it then pushes and chains the real-profile kernels with
`kaggle_kernels` against a local fake Kaggle API (`kaggle.py`). Leaves the executed notebooks,
`chain.md`/`chain.json`, `kaggle-api/kaggle.json` and `summary.md` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from .. import stacks
from ..paths import PROJECT_ROOT
from ..records import read_records

SIZES = Path(__file__).with_name("sizes.toml")
# (builder module, stack it runs in): each prints the environment that points the real clients at its stand-in.
BUILDERS = (("hub_parler", "parler"), ("hub_main", "main"), ("hub_kokoro_pocket", "main"), ("coqui", "main"),
            ("openslr", "main"))
REAL_PROFILES = ("kaggle-t4", "colab-t4")


def build_standins(root: Path, log=print) -> dict[str, str]:
    """Run every stand-in builder in its stack; the merged environment they ask for."""
    env: dict[str, str] = {}
    for module, stack in BUILDERS:
        if not (Path(__file__).parent / f"{module}.py").is_file():
            raise SystemExit(f"stand-in builder nbhelpers/rehearsal/{module}.py is missing")
        start = time.monotonic()
        done = subprocess.run([str(stacks.stack_python(stack)), "-m", f"nbhelpers.rehearsal.{module}", "--root",
                               str(root)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        if done.returncode:
            raise SystemExit(f"stand-in {module} failed:\n{done.stderr[-3000:]}")
        env.update(json.loads(done.stdout.strip().splitlines()[-1]))
        log(f"stand-in {module} ({stack} stack): {time.monotonic() - start:.1f} s")
    return env


def platform_env(profile: str, out: Path) -> dict[str, str]:
    """What the platform itself would set. Kaggle: batch run, inputs under a movable root that is read-only."""
    if profile == "kaggle-t4":
        inputs = out / "kaggle" / "input"
        inputs.mkdir(parents=True, exist_ok=True)
        inputs.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
        return {"KAGGLE_KERNEL_RUN_TYPE": "Batch", "KAGGLE_URL_BASE": "https://www.kaggle.com",
                "KAGGLE_DATA_PROXY_URL": "http://127.0.0.1:9", "TTS_KAGGLE_INPUT": str(inputs)}
    return {"COLAB_RELEASE_TAG": "rehearsal", "COLAB_GPU": ""}


def rehearse(profile: str, out: Path, only: list[str] | None = None) -> int:
    from ..suite import chain_markdown, chain_report, run_suite, summary_table
    from .kaggle import kaggle_markdown, rehearse_kaggle
    from .openslr import serve

    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = build_standins(out / "standins")
    workspace = out / ("kaggle/working" if profile == "kaggle-t4" else "drive/tts-suite")
    with serve(out / "standins") as base_url:
        os.environ.update({**env, **platform_env(profile, out), "TTS_OPENSLR_BASE_URL": base_url,
                           "TTS_SIZE_OVERRIDES": str(SIZES), "TTS_HEADLESS": "1",
                           # the stand-ins are tiny: torch's intra-op threads would only stall each other on 2 cores
                           "OMP_NUM_THREADS": "1"})
        run_dir, results = run_suite(profile, only=only, out=out, workspace=workspace, kernel="python3")
    report = chain_report(read_records(workspace / "run_log.jsonl"), profile)
    (out / "chain.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "chain.md").write_text(chain_markdown(report), encoding="utf-8")
    failed = [r.notebook for r in results if r.status != "ok"]
    kaggle = rehearse_kaggle(profile, workspace, out / "kaggle-api") if profile == "kaggle-t4" and not only else None
    verdict = "ok" if not failed and report["ok"] and (kaggle is None or kaggle["ok"]) else "FAILED"
    text = (f"# Dress rehearsal, profile {profile}: {verdict}\n\nsize overrides: {SIZES}\nworkspace: {workspace}\n"
            f"wall time: {time.monotonic() - started:.0f} s\n\n{summary_table(results)}\n\n{chain_markdown(report)}"
            + (f"\n{kaggle_markdown(kaggle)}" if kaggle else ""))
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    return 0 if verdict == "ok" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.rehearsal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="rehearse every notebook under a real profile")
    run.add_argument("--profile", required=True, choices=REAL_PROFILES)
    run.add_argument("--only", default="", help="comma-separated notebook numbers")
    run.add_argument("--out", type=Path, help="run folder (default runs/<time>-rehearse-<profile>)")
    args = parser.parse_args(argv)
    out = (args.out or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-rehearse-{args.profile}").resolve()
    return rehearse(args.profile, out, args.only.split(",") if args.only else None)


if __name__ == "__main__":
    sys.exit(main())
