"""LoRA for VITS on CPU (random tiny model: mechanics only): adapters start as the base model exactly, fold into the
weights exactly, train while the rest of the generator stays frozen, survive a checkpoint, come out of ``finish`` as
a plain VITS (bundle, ONNX), and a run is never continued in another mode."""

import shutil
from pathlib import Path

import pytest
import torch

from nbhelpers.budget import TimeBudget
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records
from nbhelpers.vits import STAGE
from nbhelpers.vits.lora import adapter_layout, add_lora, merge_from_state, targets
from nbhelpers.vits.preflight import PreflightError
from nbhelpers.vits.train import finish, prepare, train

TARGETS = ["conv_q", "conv_k", "conv_v", "conv_o", "conv_1", "conv_2", "proj"]


def tiny_vits(tmp_path):
    from TTS.tts.models.vits import Vits

    from nbhelpers.vits.config import build_config, starting_point

    params = load_profile("vits", "smoke")
    torch.manual_seed(0)
    return Vits(build_config(params, tmp_path, None, None, starting_point(params["start"]))).eval()  # no dropout


def encode(model, ids):
    with torch.no_grad():
        out = model.text_encoder(ids, torch.tensor([ids.shape[1]]))
    return torch.cat([out[0], out[1], out[2]], dim=1)


def test_adapters_start_exact_fold_exactly_and_leave_only_themselves_and_embeddings_trainable(tmp_path):
    model = tiny_vits(tmp_path)
    ids = torch.randint(1, 20, (1, 12))
    before = encode(model, ids)
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    report = add_lora(model, TARGETS, rank=4, alpha=8)
    assert report["lora_layers"] == len(targets(model, TARGETS)) > 0 and report["lora_rank"] == 4
    assert torch.equal(encode(model, ids), before)  # B = 0: the base model exactly
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("disc.")}
    assert trainable and all(n.endswith((".lora_A", ".lora_B")) or n == "text_encoder.emb.weight" for n in trainable)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("disc."))
    assert report["params_trainable"] == sum(model.get_parameter(n).numel() for n in trainable)
    assert report["params_trainable"] < report["params_total"] / 2

    for module in model.modules():  # a trained adapter changes the output...
        if hasattr(module, "lora_B"):
            torch.nn.init.normal_(module.lora_B, std=0.05)
    adapted = encode(model, ids)
    assert not torch.allclose(adapted, before, atol=1e-4)
    state = model.state_dict()
    assert set(adapter_layout(state).values()) == {4}
    fresh = tiny_vits(tmp_path)  # ... and folded into a plain VITS gives the same output
    merged = merge_from_state(fresh, state)
    assert set(merged) == set(plain)
    fresh.load_state_dict(merged)
    assert torch.allclose(encode(fresh, ids), adapted, atol=1e-5)
    with pytest.raises(ValueError, match="match no plain Conv1d/Linear layer"):
        add_lora(tiny_vits(tmp_path), ["ups"], rank=4, alpha=8)  # weight-normed decoder layers are refused


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, corpus_template):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    shutil.copytree(corpus_template, ws.root / "data" / "bn_smoke")
    params = load_profile("vits", "smoke", {"mode": "lora", "lora_rank": 4, "lora_alpha": 8, "profile_steps": 1})
    prep = prepare(params, ws, print_report=False)
    base = {k: v.clone() for k, v in prep.model.state_dict().items() if k.startswith("waveform_decoder.")}
    result = train(prep, max_steps=3, budget=TimeBudget(600))
    return ws, params, prep, base, result


def test_a_lora_run_trains_only_its_adapters_and_publishes_a_plain_vits(lora_run):
    ws, params, prep, base, result = lora_run
    assert result.status == "done" and result.end_step == 3
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=False)["model"]
    assert adapter_layout(state) and set(adapter_layout(state).values()) == {4}
    assert any(state[k].abs().sum() > 0 for k in state if k.endswith(".lora_B"))  # the adapters learnt
    assert all(torch.equal(state[k], v) for k, v in base.items())  # the frozen decoder did not move
    m = read_records(ws, STAGE)[-1]["metrics"]
    assert m["mode"] == "lora" and m["lora_layers"] > 0 and m["params_trainable"] < m["params_total"]
    assert m["seconds_per_step"] > 0
    # profile_steps = 1: coqui's step callback traced one step (after an untraced one) into the run's profile/
    assert m["profiled_steps"] == 1 and Path(m["profile_trace"]).is_file() and Path(m["profile_table"]).is_file()
    assert Path(m["profile_trace"]).parent == result.run_dir / "profile"

    done = finish(result, params, ws)
    bundle_state = torch.load(done["outputs"]["model"], map_location="cpu", weights_only=False)
    keys = bundle_state["model"] if "model" in bundle_state else bundle_state
    assert not adapter_layout(keys)  # folded: a plain VITS for every consumer (ONNX, int8, 06)
    assert done["metrics"]["onnx_vs_pytorch"]["ok"], done["metrics"]["onnx_vs_pytorch"]


def test_a_run_is_not_continued_in_another_mode(lora_run):
    ws, params, *_ = lora_run
    for other in ({"mode": "full"}, {"mode": "lora", "lora_rank": 2, "lora_alpha": 4}):
        with pytest.raises(PreflightError, match="was trained with mode lora \\(rank 4.*--no-resume"):
            prepare(load_profile("vits", "smoke", other), ws, print_report=False)
    assert prepare(params, ws, print_report=False).continue_dir is not None


def test_the_fine_tuning_study_compares_full_and_lora_vits_on_the_same_steps(tmp_path, corpus_template):
    """``bench finetune-study --stage vits``: each variant a new run of stage 04 on the same data and steps; rows
    with trainable share, s/step and the final mel loss, one loss curve per variant, and the study report's table."""
    from nbhelpers.bench.finetune import parse_variants, run_study
    from nbhelpers.bench.study import finetune_comparison

    ws = Workspace(tmp_path / "ws")
    shutil.copytree(corpus_template, ws.root / "data" / "bn_smoke")
    study = run_study("smoke", ws, parse_variants("full,lora:4", "vits"), steps=2, stage="vits")
    rows = {r["variant"]: r for r in study["variants"]}
    full, lora = rows["full"], rows["lora-r4"]
    assert full["status"] == lora["status"] == "done" and full["steps"] == lora["steps"] == 2
    assert full["trainable_pct"] == 100 and lora["trainable_pct"] < 50
    assert all(isinstance(r["final_loss"], float) and r["seconds_per_step"] > 0 for r in (full, lora))
    assert full["run_dir"] != lora["run_dir"]  # two new runs, the second did not continue the first
    assert (ws.root / "bench" / "finetune-vits" / "losses.png").read_bytes()[:4] == b"\x89PNG"
    compared, note = finetune_comparison(read_records(ws), STAGE)
    assert [r["variant"] for r in compared] == ["full", "lora-r4"] and note == "Same step budget in every mode."
    with pytest.raises(ValueError, match="vits's mode must be one of full, lora"):
        parse_variants("4bit:8", "vits")
