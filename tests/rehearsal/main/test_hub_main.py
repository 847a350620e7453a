"""The faster-whisper ``large-v3`` hub stand-in is what ``WhisperModel("large-v3")`` downloads, offline.

Builder and client run in child processes with the environment the builder prints, as in the rehearsal
(huggingface_hub reads HF_HUB_CACHE/HF_HUB_OFFLINE when it is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})})


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("standins")
    done = _run(["-m", "nbhelpers.rehearsal.hub_main", "--root", str(root)])
    assert done.returncode == 0, done.stderr[-3000:]
    return root, json.loads(done.stdout.strip().splitlines()[-1])


def test_large_v3_tokenizer_has_the_cantonese_token():
    from nbhelpers.rehearsal.hub_main import VOCAB, base_tokenizer, large_v3_tokenizer

    tok = large_v3_tokenizer(base_tokenizer())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    assert (ids["<|su|>"], ids["<|yue|>"], ids["<|translate|>"], ids["<|30.00|>"]) == (50357, 50358, 50359, VOCAB - 1)
    assert len(tok["model"]["vocab"]) + len(tok["added_tokens"]) == VOCAB


def test_whisper_large_v3_loads_through_the_real_download_path(standin):
    root, env = standin
    assert env["HF_HUB_OFFLINE"] == "1" and Path(env["HF_HUB_CACHE"]) == (root / "hub").resolve()
    done = _run(["-c", """
import json
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.utils import download_model
from nbhelpers.measure import quality
from nbhelpers.measure.asr import resolve
spec = resolve("large-v3", cuda=False)
model = WhisperModel(spec.model, device=spec.device, compute_type=spec.compute_type)
noise = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
text = quality.transcribe(noise, 16000, "kn", max_new_tokens=8, asr_model="large-v3")
print(json.dumps({"source": spec.source, "path": download_model("large-v3"), "multilingual": model.model.is_multilingual,
                  "languages": model.model.num_languages, "n_mels": model.feature_extractor.mel_filters.shape[0],
                  "text": isinstance(text, str)}))
"""], env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    snapshot = Path(out["path"])
    assert snapshot.parent.parent.name == "models--Systran--faster-whisper-large-v3"
    assert snapshot.is_relative_to(Path(env["HF_HUB_CACHE"]))
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.bin", "preprocessor_config.json",
                                                          "tokenizer.json", "vocabulary.json"]
    assert out["source"] == "hub" and out["multilingual"] and out["text"]
    assert (out["languages"], out["n_mels"]) == (100, 128)


def test_rebuild_is_a_no_op(standin):
    root, env = standin
    ref = next(Path(env["HF_HUB_CACHE"]).glob("models--Systran--faster-whisper-large-v3/refs/main"))
    before = (ref.read_text(), ref.stat().st_mtime_ns)
    done = _run(["-m", "nbhelpers.rehearsal.hub_main", "--root", str(root)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (ref.read_text(), ref.stat().st_mtime_ns) == before
