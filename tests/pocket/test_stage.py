"""Acceptance (b): on CPU the tiny random-weight model's loss falls clearly on the embedded corpus; the
exported checkpoint reloads through ``TTSModel.load_model(config, checkpoint=...)`` with identical weights
(EMA overlay as the package defines it) and generates audio from a voice prompt. Plus tokenizer, manifest
and CLI checks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from nbhelpers.paths import Workspace
from nbhelpers.pocket.latents import read_manifest
from nbhelpers.pocket.tokenizer import coverage_report, train_sentencepiece
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples


def test_tokenizer_covers_its_transcripts_and_reports_foreign_characters(tmp_path, sentences):
    model = train_sentencepiece(sentences, tmp_path, 200)
    own = coverage_report(model, sentences)
    assert own["character_coverage"] == 1.0 and own["unknown_token_share"] == 0.0
    assert 0 < own["vocab_size"] <= 200 and own["tokens_per_char"] < 1
    foreign = coverage_report(model, ["ಕನ್ನಡ xyz"])
    assert set(foreign["missing_characters"]) == {"x", "y", "z"}
    assert foreign["character_coverage"] < 1.0


def test_manifest_errors_name_the_row(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{"audio_path": "nope.wav", "text": "ಕ"}]))
    with pytest.raises(FileNotFoundError, match="row 0.*nope.wav"):
        read_manifest(tmp_path / "train.json")
    (tmp_path / "train.json").write_text(json.dumps([{"audio_path": "", "text": "ಕ"}]))
    with pytest.raises(ValueError, match="row 0.*audio_path"):
        read_manifest(tmp_path / "train.json")


def test_refuses_heads_it_cannot_train():
    from nbhelpers.pocket.model import finetune_config

    with pytest.raises(ValueError, match="pointwise"):
        finetune_config("english_2m_2026-10", "tok.model", 100)


def test_smoke_loss_falls_checkpoint_reloads_identically_and_speaks(pocket_corpus, isolated_workspace, small_cfg):
    from nbhelpers.pocket.model import load_finetuned, synthesize
    from nbhelpers.pocket.stage import run_stage
    from nbhelpers.training import STATE_FILE

    cfg = small_cfg(max_steps=60, save_every=30)
    result, outputs = run_stage(cfg, dataset=str(pocket_corpus))
    assert result.status == "done" and result.step == 60
    losses = [h["loss"] for h in result.history]
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.8 * first, f"loss did not fall clearly: {first:.3f} -> {last:.3f}"
    assert any("distill" in h for h in result.history) and all("eos" in h for h in result.history)

    # weights through the package loader == the run's own state (EMA shadow over the raw weights)
    state = torch.load(result.checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
    expected = {**state["model"], **state["extra"]["ema"]["shadow"]}
    loaded = load_finetuned(outputs["config"], outputs["checkpoint"])
    got = loaded.flow_lm.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k].to(got[k].dtype)) for k in expected)
    assert not torch.equal(got["flow_net.input_proj.weight"], state["model"]["flow_net.input_proj.weight"])
    trained_mimi = result.paths.run_dir  # Mimi is frozen: the reloaded codec equals the one that encoded
    payload = torch.load(outputs["checkpoint"], map_location="cpu", weights_only=True)
    assert all(torch.equal(v, payload["model"][f"mimi.{k}"]) for k, v in loaded.mimi.state_dict().items()), trained_mimi

    audio = synthesize(loaded, ["ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ."], pocket_corpus / "wavs" / "u8.wav", seed=0)[0]
    assert audio.ndim == 1 and len(audio) > 0.2 * loaded.sample_rate and np.isfinite(audio).all()
    samples = read_samples(outputs["samples"])  # the fixed sentences, in the prompt's voice, each on disk
    assert [r["text"] for r in samples] == list(cfg["sample_sentences"])
    assert samples[0]["model_state"] == f"after {result.step} steps from random weights"
    assert all(r["voice"] == str(outputs["voice_prompt"]) for r in samples)
    record = read_records(Workspace(), stage="07_pocket_tts_finetune")[-1]
    assert record["status"] == "done" and record["metrics"]["final_loss"] < record["metrics"]["first_loss"]

    # `speak --stream-dir`: the chunks, written as they are decoded, join into the clip it saves (the run's export
    # and voice prompt by default), and the time to the first chunk is reported
    import soundfile as sf

    from nbhelpers.pocket.__main__ import main

    out, chunks = Workspace().root / "said.wav", Workspace().root / "chunks"
    assert main(["speak", "--profile", "smoke", "--out", str(out), "--stream-dir", str(chunks), "ಹೂವು ಅರಳಿದೆ."]) == 0
    info = json.loads(out.with_name("said.wav.json").read_text())
    parts = [sf.read(chunks / f"chunk_{i:04d}.wav")[0] for i in range(info["chunks"])]
    whole, sr = sf.read(out)
    assert info["chunks"] >= 2 and not (chunks / f"chunk_{info['chunks']:04d}.wav").exists()
    assert sr == loaded.sample_rate and np.allclose(np.concatenate(parts), whole, atol=1e-4)
    assert 0 < info["first_audio_seconds"] <= info["generation_seconds"] and info["seconds"] == round(len(whole) / sr, 2)


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "nbhelpers.pocket", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "tokenizer" in out.stdout and "speak" in out.stdout


def test_flow_matching_head_trains_and_reloads(pocket_corpus, small_cfg):
    """The alternative head type end to end: one time input, Euler decoding (16 steps) after reload."""
    from nbhelpers.pocket.model import load_finetuned, synthesize
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import PACKAGE_CHECKPOINT, train

    cfg = small_cfg(flow_type="flow_matching", max_steps=8, distill_share=1.0)
    prep = prepare(cfg, dataset=str(pocket_corpus), run="fm")
    assert prep.tts_model.flow_lm.flow_net.num_time_conds == 1
    result = train(cfg, prep.tts_model, prep.train_items, paths=prep.paths)
    assert all("distill" not in h and np.isfinite(h["loss"]) for h in result.history)
    model = load_finetuned(prep.config_path, result.checkpoint / PACKAGE_CHECKPOINT)
    assert model.sampler_decode_steps == 16 and model.flow_lm.flow_type == "flow_matching"
    audio = synthesize(model, ["ಹೂವು ಅರಳಿದೆ."], pocket_corpus / "wavs" / "u9.wav", seed=0)[0]
    assert len(audio) > 0 and np.isfinite(audio).all()
