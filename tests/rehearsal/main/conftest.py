"""Rehearsal stand-ins of the main stack: each is built once per session into its own folder and reached through
the real client code, with the network switched off for huggingface_hub and coqui's downloader."""

import pytest


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    return tmp_path_factory.mktemp("standins")


@pytest.fixture
def no_downloads(monkeypatch):
    """Any download through ``requests.get`` (coqui's ModelManager, pocket-tts' https loader) fails the test;
    huggingface_hub is kept offline by HF_HUB_OFFLINE itself (its session refuses every request)."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(requests, "get", refuse)
