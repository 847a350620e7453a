"""Which Whisper a profile's asr_model selects (offline, no hub), the verified assembly of the PyPI Whisper base,
and transcription through a local CTranslate2 folder."""

import shutil

import pytest

from nbhelpers.measure import asr
from nbhelpers.measure import quality as q
from nbhelpers.profiles import load_profile


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "whisper-base"


def test_offline_base_is_assembled_verified_and_repaired(own_cache):
    assert asr.whisper_dir() == own_cache
    config = own_cache / "config.json"
    good = config.read_bytes()
    config.write_bytes(good[:-1] + b" ")  # a damaged cache is rebuilt from the packages
    assert asr.whisper_dir() == own_cache and config.read_bytes() == good


def test_a_mismatching_pin_is_refused_and_leaves_nothing(own_cache, monkeypatch):
    monkeypatch.setitem(asr.WHISPER_SHA256, "tokenizer.json", "0" * 64)
    with pytest.raises(asr.IntegrityError, match="tokenizer.json"):
        asr.whisper_dir()
    assert not own_cache.exists() and not list(own_cache.parent.glob(".whisper-base.*"))


def test_selection_of_model_device_and_compute_type(tmp_path):
    base = asr.resolve(asr.OFFLINE_BASE, cuda=False)
    assert (base.source, base.device, base.compute_type) == ("pypi", "cpu", "int8")
    assert base.model == str(asr.whisper_dir())
    gpu = asr.resolve("large-v3", cuda=True)
    assert (gpu.source, gpu.model, gpu.device, gpu.compute_type) == ("hub", "large-v3", "cuda", "float16")
    assert asr.resolve("Systran/faster-whisper-large-v3", cuda=False).source == "hub"
    with pytest.raises(ValueError, match="unknown asr_model 'large-v9'"):
        asr.resolve("large-v9", cuda=False)
    with pytest.raises(ValueError, match="unknown asr_model"):
        asr.resolve(str(tmp_path / "no" / "such" / "folder"), cuda=False)
    with pytest.raises(FileNotFoundError, match="model.bin"):
        asr.resolve(str(tmp_path), cuda=False)
    assert asr.resolve(asr.OFFLINE_BASE).device == ("cuda" if asr.cuda_visible() else "cpu")


def test_profiles_use_the_offline_base_on_smoke_and_large_v3_on_gpu():
    for stage in ("bench", "distill"):
        assert load_profile(stage, "smoke")["asr_model"] == asr.OFFLINE_BASE
        assert load_profile(stage, "kaggle-t4")["asr_model"] == load_profile(stage, "colab-t4")["asr_model"] == "large-v3"


def test_a_local_folder_transcribes_like_the_offline_base(speech, tmp_path):
    audio, sr, text = speech
    folder = tmp_path / "my-whisper"
    shutil.copytree(asr.whisper_dir(), folder)
    assert asr.resolve(str(folder), cuda=False).source == "folder"
    heard = q.transcribe(audio, sr, "en", asr_model=str(folder))
    assert q.cer(text, heard) < 0.4
    assert heard == q.transcribe(audio, sr, "en")
