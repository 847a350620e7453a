"""Acceptance tests of stage 02 on CPU with the tiny model: the loss falls, SIGKILL and budget stops resume
bit-for-bit, 2 processes match 1 process, LoRA trains only adapters, and the export loads and speaks."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from parler_settings import OVERRIDES, cli_args, run_record
from safetensors.torch import load_file

from nbhelpers.budget import TimeBudget
from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "export" / "model.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_loss_falls_and_run_is_recorded(reference_run, parler_ws, kn_dataset_dir):
    result, outputs, _ = reference_run
    losses = [h["loss"] for h in result.history]
    assert result.status == "done" and len(losses) == OVERRIDES["max_steps"]
    tenth = max(1, len(losses) // 10)
    first, last = np.mean(losses[:tenth]), np.mean(losses[-tenth:])
    assert last < 0.95 * first, f"loss did not fall clearly: {first:.3f} -> {last:.3f}"
    assert [h["step"] for h in result.history if "eval_loss" in h] == [6, 12]
    record = run_record(parler_ws, result.paths.run_dir)
    assert record["status"] == "done" and record["metrics"]["params_trainable"] > 0
    assert record["inputs"]["coverage_unknown_share"] == 0
    m = record["metrics"]
    assert (m["processes"], m["batch_size"], m["grad_accum"], m["effective_batch"]) == (1, 4, 1, 4)
    assert m["loss_first_10pct"] == pytest.approx(np.mean(losses[:tenth]))
    # everything notebook 02 shows is listed in the record
    out = record["outputs"]
    assert Path(out["loss_curve"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(Path(out["history"]).read_text()) == result.history
    coverage = json.loads(Path(out["coverage"]).read_text())
    assert coverage["splits"] == {"train": 12, "validation": 4, "test": 4}
    assert coverage["prompt_tokenizer"]["unknown_share"] == 0 and coverage["dataset"] == str(kn_dataset_dir)
    rows = read_samples(out["samples"])  # each sentence before and after, in the export, named by model state
    sentences = load_profile("parler", "smoke")["sample_sentences"]
    assert [(r["text"], r["model_state"].split(":")[0].split(" ")[0]) for r in rows] == \
        [(t, when) for t in sentences for when in ("before", "after")]
    assert all(Path(r["path"]).parent == Path(out["export"]) / "samples" and r["seconds"] > 0 for r in rows)
    assert rows[1]["model_state"] == "after 12 steps fine-tuned from random weights (tiny smoke model)"
    assert (result.paths.tensorboard).is_dir() and any(result.paths.tensorboard.iterdir())


def test_export_loads_with_from_pretrained_and_generates(reference_run):
    from parler_tts import ParlerTTSForConditionalGeneration
    from transformers import AutoTokenizer

    export = reference_run[1]["export"]
    model = ParlerTTSForConditionalGeneration.from_pretrained(export).eval()
    prompt_tok = AutoTokenizer.from_pretrained(export)
    desc_tok = AutoTokenizer.from_pretrained(Path(export) / "description_tokenizer")
    desc = desc_tok(["A calm female voice."], return_tensors="pt")
    prompt = prompt_tok(["ಕನ್ನಡ"], return_tensors="pt")
    torch.manual_seed(0)
    audio = model.generate(input_ids=desc.input_ids, attention_mask=desc.attention_mask,
                           prompt_input_ids=prompt.input_ids, prompt_attention_mask=prompt.attention_mask,
                           max_length=30)
    assert audio.shape[-1] > 1000 and torch.isfinite(audio).all()
    card = (Path(export) / "README.md").read_text()
    assert "random initial weights" in card and "Steps: 12" in card
    names = {p.name for p in (Path(export) / "samples").glob("*.wav")}
    assert {"before_0.wav", "before_1.wav", "after_0.wav", "after_1.wav"} <= names


def test_sigkill_at_an_arbitrary_step_then_resume_equals_uninterrupted(reference_run, parler_ws, kn_dataset_dir):
    run = "killed"
    ckpts = parler_ws / "parler" / run / "checkpoints"
    cmd = [sys.executable, "-m", "nbhelpers.parler"] + cli_args(parler_ws, kn_dataset_dir, run, save_every=1)
    # same intra-op thread count as the in-process reference run: float sums depend on how work is split
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(p.name >= "step-000000005" for p in ckpts.glob("step-*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (parler_ws / "parler" / run / "export").exists()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "status done at step 12/12: 1 process(es), effective batch 4" in resumed.stdout
    record = read_records(Workspace(parler_ws), "02_parler_finetune")[-1]
    assert record["status"] == "done" and record["outputs"]["run_dir"] == str(parler_ws / "parler" / run)
    assert_same_weights(weights(parler_ws / "parler" / run), weights(reference_run[0].paths.run_dir))


def test_budget_stop_saves_records_resume_needed_then_resumes_exactly(reference_run, parler_ws, kn_dataset_dir):
    from nbhelpers.parler.stage import run_stage

    cfg = load_profile("parler", "smoke", OVERRIDES)
    ws = Workspace(parler_ws)
    clock = itertools.count().__next__  # every look at the clock takes one second: about two per step
    stopped, _ = run_stage(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="budget",
                           budget=TimeBudget(14, clock=clock))
    assert stopped.status == "resume_needed" and 0 < stopped.step < OVERRIDES["max_steps"]
    assert read_records(ws, "02_parler_finetune")[-1]["status"] == "resume_needed"
    assert not (stopped.paths.run_dir / "export").exists()
    done, _ = run_stage(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="budget")
    assert done.status == "done" and done.history == reference_run[0].history
    assert_same_weights(weights(done.paths.run_dir), weights(reference_run[0].paths.run_dir))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_with_the_same_global_batch(reference_run, parler_ws, kn_dataset_dir):
    run = "ddp"
    # `--multi_gpu` (torchrun) also on CPU: `--cpu` would start a single process; the trainer uses gloo there
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "nbhelpers.parler"]
    cmd += cli_args(parler_ws, kn_dataset_dir, run, batch_size=2)  # 2 x 2 = the reference's global batch 4
    out = subprocess.run(cmd, env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    two = json.loads((parler_ws / "parler" / run / "history.json").read_text())
    one = reference_run[0].history
    assert len(two) == len(one)
    # same utterances per step; only the loss averaging differs (mean of per-process means vs one mean)
    diffs = [abs(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(two, one, strict=True)]
    assert max(diffs) < 0.02, f"2-process loss curve deviates by up to {max(diffs):.2%}"
    assert abs(two[-1]["eval_loss"] - one[-1]["eval_loss"]) / one[-1]["eval_loss"] < 0.02
    record = read_records(Workspace(parler_ws), "02_parler_finetune")[-1]  # written once, by the main process
    assert record["outputs"]["run_dir"] == str(parler_ws / "parler" / run)
    assert (record["metrics"]["processes"], record["metrics"]["batch_size"], record["metrics"]["effective_batch"]) == \
        (2, 2, 4)
    assert "2 process(es), effective batch 4 (2 per device x 2 x 1 accumulation)" in out.stdout
    assert sum(r["outputs"].get("run_dir", "").endswith(f"/{run}") for r in read_records(Workspace(parler_ws))) == 1


def test_lora_changes_only_adapters_and_merged_export_is_plain(parler_ws, kn_dataset_dir):
    from parler_tts import ParlerTTSForConditionalGeneration

    from nbhelpers.parler.export import finish
    from nbhelpers.parler.train import train

    cfg = load_profile("parler", "smoke", {**OVERRIDES, "mode": "lora", "max_steps": 4, "eval_every": 0})
    ws = Workspace(parler_ws)
    result = train(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="lora")
    peft_model = result.model
    base = {k: v for k, v in torch.load(next((result.paths.checkpoints).glob("step-*")) / "training_state.pt",
                                        weights_only=False)["model"].items()}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert set(base) >= trainable  # the checkpoint holds the adapters
    from nbhelpers.parler.model import get_bundle

    original = get_bundle("tiny", workspace_dir=result.paths.base_models, seed=int(result.metrics["seed"])).model
    original_state = original.state_dict()
    changed_adapters = 0
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            changed_adapters += "lora_B" in name and bool(param.abs().sum() > 0)  # B starts at zero
            continue
        plain = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(param.detach().cpu(), original_state[plain]), f"frozen weight {plain} changed"
    assert changed_adapters > 0
    outputs = finish(result, cfg, workspace=ws)
    export = Path(outputs["export"])
    assert not (export / "adapter_config.json").exists()
    assert not any("lora" in k for k in load_file(str(export / "model.safetensors")))
    merged = ParlerTTSForConditionalGeneration.from_pretrained(export)
    assert not any("lora" in type(m).__name__.lower() for m in merged.modules())
    moved = [k for k, v in merged.state_dict().items() if not torch.equal(v, original_state[k])]
    assert moved and all(".layers." in k for k in moved)  # merging changed the adapted decoder layers only


def test_quantised_mode_refuses_cpu_before_training(parler_ws, kn_dataset_dir, monkeypatch):
    from nbhelpers.parler.train import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_profile("parler", "smoke", {**OVERRIDES, "mode": "8bit"})
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        train(cfg, workspace=Workspace(parler_ws), dataset=str(kn_dataset_dir), run="q")
    assert not (parler_ws / "parler" / "q" / "checkpoints").exists()


def test_wandb_logging_without_wandb_installed_names_the_fix(parler_ws, kn_dataset_dir):
    """wandb is optional and not in the parler stack: asking for it fails before any training, with the fix."""
    from nbhelpers.parler.train import train

    cfg = load_profile("parler", "smoke", {**OVERRIDES, "wandb_project": "kannada-parler"})
    with pytest.raises(ImportError, match="pip install wandb"):
        train(cfg, workspace=Workspace(parler_ws), dataset=str(kn_dataset_dir), run="w")
    assert not (parler_ws / "parler" / "w" / "checkpoints").exists()


def test_each_codebooks_loss_is_logged_and_averages_to_the_loss(reference_run):
    result, _, _ = reference_run
    k = result.bundle.num_codebooks
    for entry in result.history:
        per = [entry[f"codebook_{i}"] for i in range(k)]
        assert sum(per) / k == pytest.approx(entry["loss"], rel=1e-4)  # equal codebook weights, one micro-batch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = EventAccumulator(str(result.paths.tensorboard)).Reload()
    assert {f"train/codebook_{i}" for i in range(k)} <= set(logs.Tags()["scalars"])
