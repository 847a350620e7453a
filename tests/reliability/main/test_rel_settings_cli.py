"""Out-of-range settings through the real command lines of the main-stack stages (data, vits, kokoro, bench,
pocket): refused when the profile loads, with the key named, a non-zero exit, no traceback, and nothing written
(no checkpoint, no model, no output file, no "done" record; a "failed" record at most). CLI-only numbers
(--max-steps, --stop-after, --budget-seconds, --workers, --calls) are refused by argparse."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers.paths import PROJECT_ROOT


def _fixture(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """What each stage would have trained on: a Bangla LJSpeech corpus (VITS) and a Kannada Pocket corpus, so a
    refused setting is the only thing that stops the stage."""
    root = tmp_path_factory.mktemp("rel_settings_inputs")
    _fixture("vits_fixtures", "tests/vits/conftest.py").make_corpus(root / "bn_smoke")
    _fixture("pocket_fixtures", "tests/pocket/conftest.py").make_pocket_corpus(root / "pocket")
    return {"vits": root / "bn_smoke", "pocket": root / "pocket"}


def run(stage: str, *args: str, workspace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
           "TTS_KAGGLE_INPUT": str(workspace.parent / "no-kaggle-input")}
    for name in ("TTS_PROFILE", "TTS_SIZE_OVERRIDES", "TTS_WORKSPACE"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", f"nbhelpers.{stage}", *args, "--workspace", str(workspace)],
                          env=env, capture_output=True, text=True, timeout=600)


def files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def assert_nothing_written(ws: Path, before: dict[str, int]) -> None:
    """The workspace holds what it held before, plus at most a run log whose runs all ended 'failed'."""
    after = files(ws)
    new = {k: v for k, v in after.items() if before.get(k) != v}
    log = new.pop("run_log.jsonl", None)
    assert not new, f"written despite the refused setting: {sorted(new)[:10]}"
    if log is not None:
        statuses = [json.loads(line)["status"] for line in (ws / "run_log.jsonl").read_text().splitlines() if line]
        assert set(statuses) <= {"started", "failed"} and statuses[-1] == "failed", statuses


# (stage, command and its arguments, key, bad value, what a workspace needs first)
CASES = [
    ("data", ["sources", "--profile", "smoke"], "workers", "0", None),
    ("data", ["sources", "--profile", "smoke"], "split_fractions", "[0.8,0.3,-0.1]", None),
    ("vits", ["train", "--profile", "smoke", "--no-finish"], "max_steps", "-5", "vits"),
    ("vits", ["train", "--profile", "smoke", "--no-finish"], "batch_size", "0", "vits"),
    ("kokoro", ["plan", "--profile", "smoke"], "pause_s", "-1", None),
    ("kokoro", ["plan", "--profile", "smoke"], "max_phonemes", "600", None),
    ("bench", ["systems", "--profile", "smoke"], "repeats", "0", None),
    ("pocket", ["train", "--profile", "smoke"], "max_steps", "-5", "pocket"),
    ("pocket", ["prepare", "--profile", "smoke"], "vocab_size", "0", "pocket"),
]


@pytest.mark.parametrize("stage,command,key,value,needs", CASES, ids=[f"{c[0]}-{c[2]}={c[3]}" for c in CASES])
def test_out_of_range_setting_is_refused_before_anything_is_written(inputs, tmp_path, stage, command, key, value,
                                                                    needs):
    ws = tmp_path / "ws"
    ws.mkdir()
    extra = []
    if needs == "vits":
        (ws / "data").mkdir()
        os.symlink(inputs["vits"], ws / "data" / "bn_smoke")
    elif needs == "pocket":
        extra = ["--dataset", str(inputs["pocket"])]
    before = files(ws)
    out = run(stage, *command, *extra, "--set", f"{key}={value}", workspace=ws)
    assert out.returncode != 0, out.stdout[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"error: stage {stage!r}, profile 'smoke'" in out.stderr, out.stderr[-3000:]
    assert f"  {key} = " in out.stderr and f"(from --set {key}={value}" in out.stderr and "fix: " in out.stderr
    assert_nothing_written(ws, before)


ARGPARSE_CASES = [
    ("vits", ["train", "--profile", "smoke", "--max-steps", "-5"], "--max-steps"),
    ("vits", ["train", "--profile", "smoke", "--max-steps", "0"], "--max-steps"),
    ("vits", ["train", "--profile", "smoke", "--budget-seconds", "-1"], "--budget-seconds"),
    ("pocket", ["train", "--profile", "smoke", "--max-steps", "-5"], "--max-steps"),
    ("pocket", ["train", "--profile", "smoke", "--stop-after", "0"], "--stop-after"),
    ("pocket", ["train", "--profile", "smoke", "--budget-seconds", "0"], "--budget-seconds"),
    ("data", ["prepare", "--profile", "smoke", "--workers", "-2"], "--workers"),
    ("bench", ["profile", "--profile", "smoke", "--calls", "0"], "--calls"),
]


@pytest.mark.parametrize("stage,args,option", ARGPARSE_CASES, ids=[" ".join(c[1][-2:]) + f" ({c[0]})"
                                                                  for c in ARGPARSE_CASES])
def test_cli_only_numbers_at_or_below_zero_are_usage_errors(tmp_path, stage, args, option):
    ws = tmp_path / "ws"
    out = run(stage, *args, workspace=ws)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert f"argument {option}: {args[-1]} is out of range: give a" in out.stderr, out.stderr[-2000:]
    assert not ws.exists()
