"""Epoch-based runs: ``max_epochs`` sets the step budget from the training batches (after filters, with a mix) and
gradient accumulation, and a run SIGKILLed mid-epoch resumes to exactly the weights and history of an uninterrupted
run with the same settings."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import datasets
import torch
from parler_settings import OVERRIDES
from test_train import assert_same_weights, weights

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}


def test_epochs_with_mix_and_filters_resume_bit_exact_after_sigkill(parler_ws, kn_dataset_dir, tmp_path):
    from nbhelpers.parler.stage import run_stage

    full = datasets.load_from_disk(str(kn_dataset_dir))  # a second dataset for the mix: 8 / 2 / 2 rows of the first
    other = tmp_path / "other" / "parler"
    datasets.DatasetDict({"train": full["train"].select(range(8)), "validation": full["validation"].select(range(2)),
                          "test": full["test"].select(range(2))}).save_to_disk(str(other))
    settings = {**OVERRIDES, "max_epochs": 2, "grad_accum": 2, "batch_size": 2, "mix": {str(other): 0.5},
                "max_prompt_tokens": 60, "min_audio_seconds": 0.5, "eval_every": 4, "gen_eval_every": 0}
    cfg = load_profile("parler", "smoke", settings)
    ws = Workspace(parler_ws)
    reference, _ = run_stage(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="epochs-reference")
    m = reference.metrics
    assert m["dropped"].get("prompt_too_long", 0) > 0  # the filters really drop rows
    batches = sum(d["batches_per_epoch"] for d in m["mix"].values())
    assert m["max_steps"] == math.ceil(2 * batches / 2) != OVERRIDES["max_steps"]
    assert reference.status == "done" and reference.step == m["max_steps"] == len(reference.history)
    assert m["epochs_done"] >= 2 and m["max_epochs"] == 2

    run = "epochs-killed"
    kill_at = m["max_steps"] // 2 + 1  # after a checkpoint inside an epoch, not at its end
    assert (kill_at * 2) % batches != 0
    ckpts = parler_ws / "parler" / run / "checkpoints"
    cmd = [sys.executable, "-m", "nbhelpers.parler", "train", "--profile", "smoke", "--workspace", str(parler_ws),
           "--dataset", str(kn_dataset_dir), "--run", run]
    for key, value in {**settings, "save_every": 1}.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the in-process reference's thread count
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(p.name >= f"step-{kill_at:09d}" for p in ckpts.glob("step-*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (parler_ws / "parler" / run / "export").exists()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"status done at step {m['max_steps']}/{m['max_steps']}" in resumed.stdout
    record = read_records(ws, "02_parler_finetune")[-1]
    assert record["status"] == "done" and record["metrics"]["max_epochs"] == 2
    history = json.loads((parler_ws / "parler" / run / "history.json").read_text())
    assert history == reference.history
    assert_same_weights(weights(parler_ws / "parler" / run), weights(reference.paths.run_dir))
