"""`python -m nbhelpers.parler init`: a new Parler-TTS from a pretrained text encoder and codec (fetched by their hub
ids, offline from local stand-ins published in huggingface_hub's cache layout) with a fresh decoder sized to a new
prompt tokenizer and the codec's codebooks; it loads with from_pretrained and trains a step in stage 02."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from parler_settings import OVERRIDES

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.rehearsal import hubcache

TEXT_ENCODER, CODEC = "google/byt5-small", "parler-tts/dac_44khZ_8kbps"  # real ids, random tiny weights here


def _publish(cache: Path, repo: str, folder: Path) -> None:
    hubcache.publish_folder(cache, repo, folder, sorted(p.name for p in folder.iterdir() if p.is_file()))


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """A ByT5 text encoder and a DAC codec (tiny widths) under their real ids, and a new BPE prompt tokenizer."""
    from parler_settings import SENTENCES
    from parler_tts import DACConfig
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import ByT5Tokenizer, PreTrainedTokenizerFast, T5Config, T5EncoderModel

    from nbhelpers.parler.model import SizedDACModel

    root = tmp_path_factory.mktemp("init")
    env = hubcache.hub_env(root)
    cache = Path(env["HF_HUB_CACHE"])
    t5 = root / "t5"
    torch.manual_seed(1)
    T5EncoderModel(T5Config(vocab_size=384, d_model=48, d_kv=12, d_ff=96, num_layers=2, num_heads=4,
                            is_encoder_decoder=False)).save_pretrained(t5)
    ByT5Tokenizer().save_pretrained(t5)
    _publish(cache, TEXT_ENCODER, t5)
    dac = root / "dac"
    SizedDACModel(DACConfig(num_codebooks=3, codebook_size=32, latent_dim=16, encoder_dim=4, decoder_dim=16,
                            frame_rate=86, sampling_rate=44100)).save_pretrained(dac)
    _publish(cache, CODEC, dac)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(SENTENCES * 4, trainers.BpeTrainer(vocab_size=150, special_tokens=["<pad>", "<unk>", "</s>"]))
    tokenizer = root / "new_tokenizer"
    PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>",
                            eos_token="</s>").save_pretrained(tokenizer)
    return root, env, t5, dac, tokenizer


def _init(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}  # read by huggingface_hub at import: a child process
    return subprocess.run([sys.executable, "-m", "nbhelpers.parler", "init", *args], env=full, capture_output=True,
                          text=True, timeout=600)


def test_init_builds_a_model_that_loads_and_trains_one_step(standins, kn_dataset_dir, tmp_path):
    from parler_tts import ParlerTTSForConditionalGeneration
    from transformers import AutoTokenizer

    from nbhelpers.parler.model import SOURCE_FILE, SizedDACModel
    from nbhelpers.parler.train import train

    root, env, t5_dir, dac_dir, tok_dir = standins
    out = tmp_path / "new_parler"
    done = _init(env, "--text-encoder", TEXT_ENCODER, "--codec", CODEC, "--tokenizer", str(tok_dir), "--out", str(out),
                 "--decoder-layers", "2", "--decoder-hidden", "32", "--decoder-heads", "4", "--decoder-ffn", "64")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out}" in done.stdout

    model = ParlerTTSForConditionalGeneration.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == len(AutoTokenizer.from_pretrained(tok_dir))
    assert model.embed_prompts.num_embeddings == len(tokenizer) == model.config.vocab_size
    dec = model.config.decoder
    assert (dec.num_codebooks, dec.vocab_size, dec.num_hidden_layers, dec.hidden_size) == (3, 33, 2, 32)
    assert len(model.decoder.lm_heads) == 3 and model.decoder.lm_heads[0].out_features == 33
    assert model.config.text_encoder._name_or_path == TEXT_ENCODER
    # the encoders are the pretrained ones, unchanged; the decoder is new
    from transformers import T5EncoderModel

    pretrained_t5 = T5EncoderModel.from_pretrained(t5_dir).state_dict()
    assert all(torch.equal(v, pretrained_t5[k]) for k, v in model.text_encoder.state_dict().items())
    pretrained_dac = SizedDACModel.from_pretrained(dac_dir).state_dict()
    assert all(torch.equal(v, pretrained_dac[k]) for k, v in model.audio_encoder.state_dict().items())
    recipe = json.loads((out / SOURCE_FILE).read_text())["init"]
    assert recipe["prompt_vocab"] == len(tokenizer) and recipe["codec"] == CODEC

    cfg = load_profile("parler", "smoke", {**OVERRIDES, "model": str(out), "max_steps": 1, "eval_every": 0,
                                          "sample_max_seconds": 0.05, "gen_eval_every": 0, "warmup_steps": 0})
    result = train(cfg, workspace=Workspace(tmp_path / "ws"), dataset=str(kn_dataset_dir), run="new")
    assert result.step == 1 and torch.isfinite(torch.tensor(result.history[0]["loss"]))
    assert result.metrics["attention"] == "sdpa" and result.metrics["fallbacks"] == {}
    trained = result.bundle.model.decoder.state_dict()
    assert any(not torch.equal(v, model.decoder.state_dict()[k]) for k, v in trained.items())  # the step moved it


def test_init_refuses_a_folder_that_holds_files_and_names_a_missing_repo(standins, tmp_path):
    _, env, _, _, tok_dir = standins
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    done = _init(env, "--text-encoder", TEXT_ENCODER, "--codec", CODEC, "--tokenizer", str(tok_dir), "--out", str(busy))
    assert done.returncode != 0 and "already holds files" in done.stderr
    assert (busy / "keep.txt").read_text() == "mine"
    missing = _init(env, "--text-encoder", "google/flan-t5-nope", "--codec", CODEC, "--tokenizer", str(tok_dir),
                    "--out", str(tmp_path / "x"))
    assert missing.returncode != 0 and "google/flan-t5-nope" in missing.stderr
    assert not (tmp_path / "x").exists()
