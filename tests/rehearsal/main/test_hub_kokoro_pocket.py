"""The hub stand-ins: Kokoro-82M and Pocket TTS's released english model load through their real loaders from the
stand-in cache with HF_HUB_OFFLINE=1."""

import pytest

from nbhelpers.rehearsal import hub_kokoro_pocket


@pytest.fixture(scope="module")
def hub_env(standins):
    return hub_kokoro_pocket.build(standins)


@pytest.fixture
def offline_hub(hub_env, monkeypatch, no_downloads):
    import huggingface_hub.constants

    for key, value in hub_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", hub_env["HF_HUB_CACHE"])
    return hub_env


def test_kokoro_torch_backend_from_the_cache(offline_hub):
    from nbhelpers.kokoro.backends import choose_backend

    backend, why = choose_backend("auto")
    assert backend.name == "torch" and "local hub cache" in why, why
    assert backend.voices() == ["af_heart"]
    pack = backend.voice_pack("af_heart")
    assert pack.shape == (510, 1, 256)
    phonemes = "həlˈO wˈɜɹld"
    out = backend.infer(phonemes, pack, 1.0)
    assert out.n_tokens == len(phonemes) and len(out.audio) == 600 * int(out.durations.sum())
    assert (out.durations == 1).all()  # one frame per token: short audio on CPU


def test_kokoro_cache_missing_falls_back(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from nbhelpers.kokoro.backends import hub_status

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    ok, why = hub_status("hexgrad/Kokoro-82M")
    assert not ok and "not in the local hub cache" in why


def test_pocket_released_english_loads(offline_hub):
    from nbhelpers.pocket.model import load_released, parameter_counts

    tts = load_released("english")
    assert tts.has_voice_cloning  # the voice-cloning weights were found, not the fallback repo
    assert tts.flow_lm.conditioner.embed.weight.shape == (4001, 1024)
    assert parameter_counts(tts)["flow_lm"] > 80_000_000
    assert float(tts.flow_lm.speaker_proj_weight.detach().abs().sum()) > 0  # loaded, not the zero init


def test_pocket_without_the_gated_voice_cloning_weights_is_an_error(offline_hub, tmp_path, monkeypatch):
    """Only the public fallback repo in the cache (what a user without access to kyutai/pocket-tts gets):
    pocket-tts would fall back silently; the project's loader names the gated repo and the fix instead."""
    import shutil

    import huggingface_hub.constants
    import yaml
    from pocket_tts.utils.config import CONFIGS_DIR

    from nbhelpers.env import ModelAccessError
    from nbhelpers.pocket.model import load_released

    cfg = yaml.safe_load((CONFIGS_DIR / "english.yaml").read_text(encoding="utf-8"))
    gated, _, gated_rev = hub_kokoro_pocket.parse_hf_path(cfg["weights_path"])
    public, _, public_rev = hub_kokoro_pocket.parse_hf_path(cfg["weights_path_without_voice_cloning"])
    cache = tmp_path / "hub"
    shutil.copytree(offline_hub["HF_HUB_CACHE"], cache, symlinks=True)
    src, dst = cache / f"models--{gated.replace('/', '--')}", cache / f"models--{public.replace('/', '--')}"
    shutil.copytree(src / "snapshots" / gated_rev, dst / "snapshots" / public_rev, dirs_exist_ok=True)  # real files
    shutil.rmtree(src)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelAccessError, match=r"kyutai/pocket-tts.*Request access.*HF_TOKEN"):
        load_released("english")
