"""Two processes through the launch path notebooks use (``nb.stage_argv`` -> ``accelerate launch``, gloo on CPU):
a run stopped at a mid-run checkpoint and resumed ends with weights, EMA and optimiser state ``torch.equal`` to an
uninterrupted two-process run, and the stage record says how many processes trained and the effective batch. With
gradient accumulation, two languages sampled by weight and the validation loss on."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from nbhelpers import nb
from nbhelpers.checkpoint import latest_checkpoint
from nbhelpers.records import read_records
from nbhelpers.training import STATE_FILE

STEPS, STOP = 6, 3
SETTINGS = {"batch_size": 2, "grad_accum": 2, "max_steps": STEPS, "save_every": 0, "warmup_steps": 2,
            "voice_prompt_frames": 12, "distill_share": 0.5, "sample_sentences": [], "val_every": 2, "eval_items": 0}


def launch(workspace: Path, languages: dict, run: str, *extra: str) -> dict:
    """``pocket train`` as two processes; returns the stage record it wrote."""
    args = ["--profile", "smoke", "--workspace", str(workspace), "--run", run,
            *[f"--set={k}={json.dumps(v)}" for k, v in {**SETTINGS, "languages": languages}.items()], *extra]
    argv = nb.stage_argv("pocket", "train", args, processes=2)
    done = subprocess.run(argv, env=nb.child_env(workspace), cwd=str(nb.PROJECT_ROOT), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return read_records(workspace / "run_log.jsonl", "07_pocket_tts_finetune")[-1]


def final_state(workspace: Path, run: str) -> dict:
    ckpt = latest_checkpoint(workspace / "pocket" / run / "checkpoints")
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
    assert state["step"] == STEPS
    return state


@pytest.mark.slow
def test_two_processes_stop_and_resume_equal_uninterrupted(pocket_corpus, bn_pocket_corpus, tmp_path):
    ws = tmp_path / "ws"
    languages = {"kn": {"dataset": str(pocket_corpus), "weight": 1.0, "vocab_size": 120},
                 "bn": {"dataset": str(bn_pocket_corpus), "weight": 1.0, "vocab_size": 80}}
    whole = launch(ws, languages, "whole")
    assert whole["status"] == "done"
    assert whole["metrics"]["processes"] == 2, (
        f"`accelerate launch` started {whole['metrics']['processes']} process(es), not 2: {nb.stage_argv('pocket', 'train', processes=2)}")
    assert whole["metrics"]["effective_batch"] == 2 * SETTINGS["batch_size"] * SETTINGS["grad_accum"]
    assert set(whole["metrics"]["languages"]) == {"kn", "bn"} and whole["metrics"]["final_val_loss"] > 0

    stopped = launch(ws, languages, "split", "--stop-after", str(STOP))
    assert stopped["status"] == "resume_needed" and stopped["metrics"]["step"] == STOP
    resumed = launch(ws, languages, "split")
    assert resumed["status"] == "done" and resumed["metrics"]["step"] == STEPS

    a, b = final_state(ws, "whole"), final_state(ws, "split")
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
    assert len(a["rng_per_process"]) == 2
