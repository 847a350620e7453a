"""Kokoro tests run strictly offline: the hub is switched off (with an empty cache) for every test, and one ONNX
session is shared."""

import pytest


@pytest.fixture(autouse=True)
def hub_offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # an empty hub cache: offline, a cached hexgrad/Kokoro-82M would be used (backends.hub_status)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture(scope="session")
def onnx_speaker():
    from nbhelpers.kokoro.backends import OnnxBackend
    from nbhelpers.kokoro.synth import Speaker

    return Speaker(OnnxBackend(), "test: offline ONNX backend")
