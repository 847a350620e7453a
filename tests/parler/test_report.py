"""What notebook 02 shows, produced by the stage's child processes: plan (settings, memory plan, expected
processes and batch), sample index, loss curve, and the `speak` subcommand behind the notebook's "Try it"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from nbhelpers.parler.report import MODES, effective_batch, loss_summary, plan, plot_curves, sample_rows
from nbhelpers.paths import PROJECT_ROOT
from nbhelpers.profiles import load_profile

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}


def test_plan_expects_one_process_per_gpu_and_marks_the_chosen_mode():
    cfg = load_profile("parler", "kaggle-t4")
    info = plan(cfg, precision="fp16", gpus=2)
    assert info["processes_expected"] == 2 and info["effective_batch_expected"] == 4 * 2 * 8 == 64
    assert plan(cfg, precision="no", gpus=0)["processes_expected"] == 1
    chosen = [row["mode"] for row in info["memory_plan"] if row["chosen"]]
    assert chosen == [cfg["mode"]] and set(MODES) == {"full", "lora", "8bit", "4bit"}
    fits = {row["mode"]: row["fits T4"] for row in info["memory_plan"]}
    assert fits["full"] == fits["lora"] == fits["4bit"] == "yes"  # the profile's own mode must fit
    assert all(row["GiB at this batch"] > row["peak GiB (4 x 10 s)"] for row in info["memory_plan"])  # 4 x 20 s
    assert info["note"] == "" and plan(load_profile("parler", "smoke"), precision="no", gpus=0)["note"]
    json.dumps(info)  # the notebook reads it as JSON


def test_effective_batch_and_loss_summary():
    assert effective_batch(8, 2, 4) == 64 and effective_batch(4, 1, 1) == 4
    history = [{"step": i + 1, "loss": float(20 - i)} for i in range(20)]
    assert loss_summary(history) == {"loss_first_10pct": 19.5, "loss_last_10pct": 1.5}
    assert loss_summary([]) == {}


def test_sample_rows_name_each_clip_with_its_model_state_and_leave_out_missing_ones(tmp_path):
    cfg = load_profile("parler", "smoke")
    sf.write(tmp_path / "before_0.wav", [0.0] * 16000, 16000)
    sf.write(tmp_path / "after_0.wav", [0.0] * 8000, 16000)
    sf.write(tmp_path / "after_1.wav", [0.0] * 100, 16000)
    rows = sample_rows(cfg, tmp_path, step=12)
    assert [(r["text"], Path(r["path"]).name) for r in rows] == [
        (cfg["sample_sentences"][0], "before_0.wav"), (cfg["sample_sentences"][0], "after_0.wav"),
        (cfg["sample_sentences"][1], "after_1.wav")]
    assert rows[0]["model_state"] == "before fine-tuning: random weights (tiny smoke model)"
    assert rows[1]["model_state"] == "after 12 steps fine-tuned from random weights (tiny smoke model)"
    assert [r["seconds"] for r in rows] == [1.0, 0.5, 0.006]
    assert rows[0]["description"] == cfg["sample_description"]


def test_loss_curve_png_has_labelled_axes(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    labels = []
    real_savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        labels.extend((ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes)
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    history = [{"step": 1, "loss": 3.0, "kd": 1.0}, {"step": 2, "loss": 2.5, "kd": 0.8, "eval_loss": 2.7}]
    path = plot_curves(history, tmp_path / "curve.png", parts=("kd",))
    assert path.read_bytes()[:4] == b"\x89PNG" and not list(tmp_path.glob(".*"))  # no temporary file left
    assert labels == [("optimiser step", "codebook cross-entropy (nats)")] * 2


def test_plan_and_speak_commands_write_what_the_notebook_reads(reference_run, parler_ws):
    _, outputs, _ = reference_run
    base = [sys.executable, "-m", "nbhelpers.parler"]
    common = ["--profile", "smoke", "--workspace", str(parler_ws), "--run", "cli"]
    done = subprocess.run(base + ["plan", *common, "--set", "mode=lora"], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((parler_ws / "parler" / "cli" / "plan.json").read_text())
    assert info["mode"] == "lora" and info["settings"]["mode"] == "lora" and info["processes_expected"] == 1
    wav = parler_ws / "speak" / "hello.wav"
    done = subprocess.run(base + ["speak", *common, "--text", "ಕನ್ನಡ", "--export", str(outputs["export"]),
                                  "--out", str(wav), "--max-seconds", "0.3"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    audio, sr = sf.read(wav)
    meta = json.loads(wav.with_name("hello.wav.json").read_text())
    assert len(audio) > 0 and meta["text"] == "ಕನ್ನಡ" and meta["model"] == str(outputs["export"])
    assert meta["description"] == load_profile("parler", "smoke")["sample_description"]
    assert meta["synthesis_path"].startswith("cpu, float32") and "int8 decoder" in meta["synthesis_path"]
    assert meta["synthesis"]["presets_cached"] == 1 and any((Path(parler_ws) / "parler" / "presets").rglob("*.pt"))


def test_speak_refuses_empty_text(reference_run, parler_ws):
    from nbhelpers.parler.stage import speak
    from nbhelpers.paths import Workspace

    with pytest.raises(ValueError, match="empty"):
        speak(load_profile("parler", "smoke"), text="  ", out=Path(parler_ws) / "x.wav", workspace=Workspace(parler_ws))
