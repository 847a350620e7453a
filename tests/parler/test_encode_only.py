"""Preprocessing only: one session encodes the audio codes, the next one (with that output attached, read-only)
trains without encoding anything."""

import json
import os
import subprocess
import sys

import pytest
from parler_settings import OVERRIDES

from nbhelpers.paths import PROJECT_ROOT

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def test_a_later_session_trains_on_the_codes_an_earlier_one_encoded(kn_dataset_dir, tmp_path, monkeypatch):
    from nbhelpers.parler import codes as codes_module
    from nbhelpers.parler.train import train
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    first = tmp_path / "input" / "session-1"  # where Kaggle mounts the attached output of session 1
    done = subprocess.run([sys.executable, "-m", "nbhelpers.parler", "encode", "--profile", "smoke", "--workspace",
                           str(first), "--dataset", str(kn_dataset_dir)], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((first / "parler" / "codes" / "encoded.json").read_text())
    assert info["datasets"][str(kn_dataset_dir)]["splits"] == {"train": 12, "validation": 4, "test": 4}
    (first).chmod(0o555)  # attached outputs are read-only

    monkeypatch.setenv("TTS_KAGGLE_INPUT", str(tmp_path / "input"))
    monkeypatch.setattr(codes_module, "encode_split", lambda *a, **k: pytest.fail("codes were encoded again"))
    cfg = load_profile("parler", "smoke", {**OVERRIDES, "max_steps": 2, "eval_every": 0, "sample_max_seconds": 0.05})
    second = Workspace(tmp_path / "session-2")
    result = train(cfg, workspace=second, dataset=str(kn_dataset_dir), run="run", stop_after=1)
    assert result.step == 1
    copied = list((second.root / "parler" / "codes").rglob("train.pt"))
    assert len(copied) == 1  # this session's output holds the codes too, for the session after it
