"""The Parler-TTS hub stand-ins are found by the real client code under the real repo ids, offline.

The builder and every client run in child processes with the environment the builder prints, as in the rehearsal:
huggingface_hub reads HF_HUB_CACHE/HF_HUB_OFFLINE when it is imported, so this process's copy cannot be redirected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INDIC, MINI, T5 = "ai4bharat/indic-parler-tts", "parler-tts/parler-tts-mini-v1", "google/flan-t5-large"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    full = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("standins")
    done = _run(["-m", "nbhelpers.rehearsal.hub_parler", "--root", str(root)])
    assert done.returncode == 0, done.stderr[-3000:]
    return root, json.loads(done.stdout.strip().splitlines()[-1])


def _client(code: str, env: dict[str, str]) -> dict:
    done = _run(["-c", code], env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_environment_points_at_an_offline_cache(standins):
    root, env = standins
    assert env["HF_HUB_OFFLINE"] == "1"
    assert Path(env["HF_HUB_CACHE"]) == (root / "hub").resolve()


def test_cache_layout_is_huggingface_hubs_own(standins):
    from huggingface_hub import scan_cache_dir

    _, env = standins
    info = scan_cache_dir(env["HF_HUB_CACHE"])
    assert not info.warnings, info.warnings
    repos = {r.repo_id: r for r in info.repos}
    assert set(repos) >= {INDIC, MINI, T5}
    indic = repos[INDIC]
    (rev,) = indic.revisions
    assert rev.refs == frozenset({"main"}) and len(rev.commit_hash) == 40
    assert {f.file_name for f in rev.files} == {
        "config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"}
    for f in rev.files:  # snapshot files are symlinks to blobs named by the hub's etag
        assert f.file_path.is_symlink() and f.blob_path.parent.name == "blobs"
    safetensors = next(f for f in rev.files if f.file_name == "model.safetensors")
    import hashlib

    assert safetensors.blob_path.name == hashlib.sha256(safetensors.blob_path.read_bytes()).hexdigest()  # LFS etag


def test_rebuild_is_a_no_op(standins):
    root, env = standins
    refs = sorted(Path(env["HF_HUB_CACHE"]).glob("*/refs/main"))
    before = {p: (p.read_text(), p.stat().st_mtime_ns) for p in refs}
    done = _run(["-m", "nbhelpers.rehearsal.hub_parler", "--root", str(root)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == env
    assert {p: (p.read_text(), p.stat().st_mtime_ns) for p in refs} == before


def test_from_pretrained_real_ids_load_the_standins_offline(standins):
    _, env = standins
    out = _client("""
import json
from parler_tts import ParlerTTSForConditionalGeneration
from transformers import AutoTokenizer
import nbhelpers.parler.model  # the project's loading code registers its DAC wrapper, as every stage does
model = ParlerTTSForConditionalGeneration.from_pretrained("ai4bharat/indic-parler-tts")
desc = AutoTokenizer.from_pretrained(model.config.text_encoder._name_or_path)
mini = ParlerTTSForConditionalGeneration.from_pretrained("parler-tts/parler-tts-mini-v1")
c = model.config
print(json.dumps({"text_encoder": c.text_encoder._name_or_path, "audio_encoder": c.audio_encoder._name_or_path,
                  "decoder_layers": c.decoder.num_hidden_layers, "text_layers": c.text_encoder.num_layers,
                  "codebooks": c.decoder.num_codebooks, "sampling_rate": c.sampling_rate,
                  "desc_class": type(desc).__name__, "desc_vocab_fits": len(desc) <= c.text_encoder.vocab_size,
                  "mini_prompt_vocab": mini.config.vocab_size}))
""", env)
    assert out["text_encoder"] == T5 and out["audio_encoder"] == "parler-tts/dac_44khZ_8kbps"
    assert (out["decoder_layers"], out["text_layers"], out["codebooks"], out["sampling_rate"]) == (24, 24, 9, 44100)
    assert out["desc_class"] == "T5TokenizerFast" and out["desc_vocab_fits"]


def test_indic_prompt_tokenizer_is_llama_style_with_byte_fallback(standins):
    """The prompt tokenizer as Indic Parler-TTS ships it. Loading it rebuilds the fast tokenizer from the
    SentencePiece model (its tokenizer_config sets add_prefix_space), which needs sentencepiece's protobuf
    module to import in this stack, exactly as the real repo does."""
    _, env = standins
    out = _client("""
import json
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("ai4bharat/indic-parler-tts")
texts = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ? 2024", "আমাদের বাড়িতে 3টি বিড়াল আছে।", "வணக்கம்"]
ids = [tok(t).input_ids for t in texts]
print(json.dumps({"class": type(tok).__name__, "padding_side": tok.padding_side, "pad": tok.pad_token,
                  "bos_first": all(i[0] == tok.bos_token_id for i in ids),
                  "round_trip": [tok.decode(i, skip_special_tokens=True) == t for i, t in zip(ids, texts)],
                  "unknown": sum(i.count(tok.unk_token_id) for i in ids),
                  "bytes_for_tamil": sum(p.startswith("<0x") for p in tok.convert_ids_to_tokens(ids[2]))}))
""", env)
    assert out["class"] == "LlamaTokenizerFast" and out["padding_side"] == "left" and out["pad"] == "<unk>"
    assert out["bos_first"] and all(out["round_trip"]) and out["unknown"] == 0
    assert out["bytes_for_tamil"] > 0  # a script it was not trained on falls back to bytes, not <unk>


def test_project_loader_gets_both_tokenizers(standins):
    _, env = standins
    out = _client("""
import json
from nbhelpers.parler.model import load_bundle
b = load_bundle("indic")
print(json.dumps({"source": b.source, "desc": b.description_tokenizer.name_or_path, "codebooks": b.num_codebooks,
                  "frame_rate": b.frame_rate, "sr": b.sampling_rate}))
""", env)
    assert out == {"source": "indic", "desc": T5, "codebooks": 9, "frame_rate": 86.0, "sr": 44100}


def test_an_id_without_standin_is_not_downloaded(standins):
    _, env = standins
    done = _run(["-c", "from transformers import AutoConfig; AutoConfig.from_pretrained('parler-tts/parler-tts-large-v1')"],
                env)
    assert done.returncode != 0 and "offline" in done.stderr.lower()


def test_a_model_the_hub_cannot_give_is_named_with_the_fix(standins):
    """The project's loader turns the hub's offline/missing error into one naming the model and what to do."""
    _, env = standins
    done = _run(["-c", "from nbhelpers.parler.model import load_bundle; load_bundle('parler-tts/parler-tts-large-v1')"],
                env)
    assert done.returncode != 0
    assert "ModelAccessError: cannot load parler-tts/parler-tts-large-v1" in done.stderr
    assert "Internet" in done.stderr
