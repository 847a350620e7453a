"""Shared fixtures: every test gets its own workspace and a Kaggle input root that does not exist, so no test
reads or writes the user's workspace or a real /kaggle tree."""

import pytest


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    ws = tmp_path / "workspace"
    monkeypatch.setenv("TTS_WORKSPACE", str(ws))
    monkeypatch.setenv("TTS_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))
    for var in ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "COLAB_RELEASE_TAG", "COLAB_GPU", "TTS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return ws
