"""Acceptance (c): a run killed with SIGKILL at an arbitrary step, then resumed, ends with weights, EMA and
optimiser state ``torch.equal`` to an uninterrupted run; a budget stop resumes the same way. Every training feature
of issue #21 is on: gradient accumulation, two languages sampled by weight, the validation loss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from nbhelpers.budget import TimeBudget
from nbhelpers.checkpoint import latest_checkpoint
from nbhelpers.paths import Workspace
from nbhelpers.training import STATE_FILE

STEPS = 10


def run(cfg, name: str, **kw):
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import train

    prep = prepare(cfg, run=name)
    return train(cfg, prep.tts_model, prep.train_items, paths=prep.paths, val_items=prep.val_items, **kw)


def features(kn: Path, bn: Path) -> dict:
    """Accumulation (2 micro-batches a step), kn + bn weighted 2:1, validation loss every 3 steps."""
    return {"batch_size": 2, "grad_accum": 2, "val_every": 3,
            "languages": {"kn": {"dataset": str(kn), "weight": 2.0, "vocab_size": 120},
                          "bn": {"dataset": str(bn), "weight": 1.0, "vocab_size": 80}}}


def final_state(result) -> dict:
    return torch.load(result.checkpoint / STATE_FILE, map_location="cpu", weights_only=False)


def assert_same(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] == STEPS
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ema_a, ema_b = a["extra"]["ema"]["shadow"], b["extra"]["ema"]["shadow"]
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    exp_a = [s["exp_avg"] for s in a["optimizer"]["state"].values()]
    exp_b = [s["exp_avg"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(exp_a, exp_b, strict=True))
    assert [h["loss"] for h in a["extra"]["history"]] == [h["loss"] for h in b["extra"]["history"]]
    assert [h.get("val_loss") for h in a["extra"]["history"]] == [h.get("val_loss") for h in b["extra"]["history"]]
    assert [h["language"] for h in a["extra"]["history"]] == [h["language"] for h in b["extra"]["history"]]


def test_sigkill_and_budget_stop_resume_bit_exactly(pocket_corpus, bn_pocket_corpus, isolated_workspace, small_cfg):
    on = features(pocket_corpus, bn_pocket_corpus)
    cfg = small_cfg(max_steps=STEPS, save_every=1, distill_share=0.5, **on)
    reference = final_state(run(cfg, "ref"))
    history = reference["extra"]["history"]
    assert {h["language"] for h in history} == {"kn", "bn"} and any("val_loss" in h for h in history)

    # SIGKILL: a CLI run saving every step is killed as soon as its 4th checkpoint is complete
    ckdir = Workspace().root / "pocket" / "killed" / "checkpoints"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "nbhelpers.pocket", "train", "--profile", "smoke", "--run", "killed",
                             *[f"--set={k}={json.dumps(v)}" for k, v in {
                                 "max_steps": STEPS, "save_every": 1, "warmup_steps": 2, "voice_prompt_frames": 12,
                                 "distill_share": 0.5, "eval_items": 0, **on}.items()]],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        found = latest_checkpoint(ckdir) if ckdir.is_dir() else None
        if found is not None and int(found.name.split("-")[1]) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(latest_checkpoint(ckdir).name.split("-")[1])
    assert 4 <= killed_at < STEPS
    resumed = run(cfg, "killed")
    assert resumed.status == "done"
    assert_same(final_state(resumed), reference)

    # budget stop: a fake clock that runs out after a few steps, then a resume with time to spare
    ticks = iter(range(0, 10_000, 10))
    budget = TimeBudget(75, clock=lambda: next(ticks))
    stopped = run(cfg, "budget", budget=budget)
    assert stopped.status == "resume_needed" and 0 < stopped.step < STEPS
    finished = run(cfg, "budget")
    assert finished.status == "done"
    assert_same(final_state(finished), reference)
