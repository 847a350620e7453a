"""Out-of-range settings on the parler stack, end to end through the real command lines: ``--set max_steps=-5``
once exported an untrained "done" Parler model that stage 03 would take as its teacher. Now stages 02 and 03
refuse such values when the profile loads (key named, non-zero exit, no traceback, nothing written) and
``--max-steps -5`` is an argparse error. The declared choices match what the code and libraries accept."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nbhelpers.paths import PROJECT_ROOT
from nbhelpers.profiles import LIMITS, PROFILE_DIR


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small Kannada DatasetDict (tests/parler/conftest.py's builder): what the stages would have trained on."""
    spec = importlib.util.spec_from_file_location("parler_fixtures", PROJECT_ROOT / "tests" / "parler" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "parler"))  # its `parler_settings` import
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PROJECT_ROOT / "tests" / "parler"))
    return module.make_dataset(tmp_path_factory.mktemp("rel_settings_parler") / "kn")


def run(stage: str, *args: str, workspace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
           "TTS_KAGGLE_INPUT": str(workspace.parent / "no-kaggle-input")}
    for name in ("TTS_PROFILE", "TTS_SIZE_OVERRIDES", "TTS_WORKSPACE"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", f"nbhelpers.{stage}", *args, "--workspace", str(workspace)],
                          env=env, capture_output=True, text=True, timeout=900)


def assert_nothing_written(ws: Path) -> None:
    """No model, checkpoint or output: the workspace holds at most a run log whose runs all ended 'failed'."""
    written = sorted(str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file()) if ws.exists() else []
    assert set(written) <= {"run_log.jsonl"}, f"written despite the refused setting: {written[:10]}"
    if written:
        statuses = [json.loads(line)["status"] for line in (ws / "run_log.jsonl").read_text().splitlines() if line]
        assert set(statuses) <= {"started", "failed"} and statuses[-1] == "failed", statuses


CASES = [
    ("parler", ["train", "--profile", "smoke"], "max_steps", "-5"),
    ("parler", ["train", "--profile", "smoke"], "batch_size", "0"),
    ("parler", ["plan", "--profile", "smoke"], "mode", "half"),
    ("distill", ["run", "--profile", "smoke", "--teacher", "tiny"], "max_steps", "-5"),
    ("distill", ["run", "--profile", "smoke", "--teacher", "tiny"], "temperature", "0"),
]


@pytest.mark.parametrize("stage,command,key,value", CASES, ids=[f"{c[0]}-{c[1][0]}-{c[2]}={c[3]}" for c in CASES])
def test_out_of_range_setting_exports_nothing_and_records_no_done(dataset, tmp_path, stage, command, key, value):
    ws = tmp_path / "ws"
    out = run(stage, *command, "--dataset", str(dataset), "--set", f"{key}={value}", workspace=ws)
    assert out.returncode != 0, out.stdout[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"error: stage {stage!r}, profile 'smoke'" in out.stderr, out.stderr[-3000:]
    assert f"  {key} = " in out.stderr and f"(from --set {key}={value})" in out.stderr and "fix: " in out.stderr
    assert_nothing_written(ws)


@pytest.mark.parametrize("args,option", [
    (["parler", "train", "--max-steps", "-5"], "--max-steps"), (["parler", "plan", "--max-steps", "0"], "--max-steps"),
    (["parler", "train", "--stop-after", "-1"], "--stop-after"),
    (["parler", "speak", "--text", "ನಮಸ್ಕಾರ", "--max-seconds", "0"], "--max-seconds"),
    (["distill", "run", "--budget-seconds", "-3"], "--budget-seconds"),
])
def test_cli_only_numbers_at_or_below_zero_are_usage_errors(dataset, tmp_path, args, option):
    ws = tmp_path / "ws"
    out = run(args[0], *args[1:], "--profile", "smoke", "--dataset", str(dataset), workspace=ws)
    assert out.returncode == 2, (out.stdout[-2000:], out.stderr[-2000:])
    assert f"argument {option}: {args[-1]} is out of range: give a" in out.stderr, out.stderr[-2000:]
    assert not ws.exists()


def test_a_student_of_zero_layers_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "nbhelpers.distill", "mapping", "24", "0"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=300)
    assert out.returncode == 2 and "argument student_layers: 0 is out of range: give a whole number > 0" in out.stderr


def test_declared_choices_match_the_code():
    """Stage 02/03's [limits] choices are values their code and libraries accept."""
    from accelerate.utils import PrecisionType
    from transformers import SchedulerType

    from nbhelpers.distill.teacher_cache import MODES as CACHE_MODES
    from nbhelpers.parler.report import MODES

    parler, distill = ({**tomllib.loads((PROFILE_DIR / f"{s}.toml").read_text(encoding="utf-8"))[LIMITS]}
                       for s in ("parler", "distill"))
    assert parler["mode"] == list(MODES)
    assert distill["teacher_cache"] == list(CACHE_MODES)
    for limits in (parler, distill):
        assert set(limits["lr_schedule"]) <= {s.value for s in SchedulerType}
        assert set(limits["mixed_precision"]) - {"auto"} <= {p.value for p in PrecisionType}


def test_distillation_reads_its_loop_settings_from_its_own_profile_only():
    """Stage 03 runs stage 02's loop, but every setting that loop reads comes from distill.toml (so ``--set``
    reaches it and parler.toml is never read): all of stage 02's settings but the adapters' are in the loop's
    settings, and a distill override of a data filter / attention / encoding setting arrives there."""
    from nbhelpers.distill.train import loop_config
    from nbhelpers.profiles import PROFILES, load_profile

    adapters = {"lora_rank", "lora_alpha", "lora_dropout", "lora_targets"}
    for profile in PROFILES:
        distill = load_profile("distill", profile, {"attention": "eager", "encode_workers": 2, "min_audio_seconds": 0.7})
        cfg = loop_config(distill, "student")
        missing = set(load_profile("parler", profile)) - set(cfg) - adapters
        assert not missing, f"stage 02's loop would read {sorted(missing)}, which distill.toml does not define"
        assert (cfg["attention"], cfg["encode_workers"], cfg["min_audio_seconds"]) == ("eager", 2, 0.7)
        assert cfg["mode"] == "full" and cfg["mix"] == {} and cfg["model"] == "student"
        assert cfg["max_steps"] == distill.max_steps and cfg["profile"] == profile
