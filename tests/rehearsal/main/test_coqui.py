"""The coqui stand-in: the real ModelManager finds the released Bangla VITS under $TTS_HOME without downloading,
and stage 04's restore loads every tensor of it into the model its config builds."""

import pytest

from nbhelpers.rehearsal import coqui


@pytest.fixture(scope="module")
def tts_home(standins):
    env = coqui.build(standins)
    return env["TTS_HOME"]


@pytest.mark.parametrize("start", ["bn-male", "bn-female"])
def test_model_manager_finds_the_standin(tts_home, start, monkeypatch, no_downloads):
    from TTS.tts.models.vits import Vits

    from nbhelpers.vits.config import download_start, load_coqui_config, starting_point
    from nbhelpers.vits.restore import load_state, plan_restore

    monkeypatch.setenv("TTS_HOME", tts_home)
    model_path, config_path = download_start(starting_point(start))
    assert model_path.name == "model_file.pth" and config_path.name == "config.json"
    assert model_path.parent.name == starting_point(start).model_id.replace("/", "--")
    config = load_coqui_config(config_path)
    assert config.phonemizer == "bn_phonemizer" and "আ" in config.characters.characters
    _, report = plan_restore(Vits(config), load_state(model_path))
    assert report.reinitialised == [] and report.restored > 100
