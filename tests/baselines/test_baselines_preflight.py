"""Stage 08 refuses bad input before training, naming the file, row and fix, and keeps the caches honest."""

import soundfile as sf

from nbhelpers.baselines.__main__ import main
from nbhelpers.baselines.config import fastspeech2_config
from nbhelpers.baselines.train import _drop_partial_caches
from nbhelpers.profiles import load_profile


def test_bad_wav_and_missing_export_are_named(bn_export, isolated_workspace, capsys):
    audio, _ = sf.read(bn_export / "wavs" / "bn_0001.wav")
    sf.write(bn_export / "wavs" / "bn_0001.wav", audio, 16000)
    assert main(["train", "--profile", "smoke", "--workspace", str(isolated_workspace)]) == 2
    err = capsys.readouterr().err
    assert "metadata_train.csv:2 (bn_0001)" in err and "16000 Hz" in err and "Fix" in err
    assert (isolated_workspace / "baselines" / "preflight.json").is_file()
    assert not (isolated_workspace / "baselines" / "fastspeech2").exists()  # no training started

    assert main(["train", "--profile", "smoke", "--workspace", str(isolated_workspace),
                 "--set", "dataset=no_such_set"]) == 2
    assert "no_such_set" in capsys.readouterr().err


def test_interrupted_pitch_cache_is_recomputed(tmp_path):
    config = fastspeech2_config(load_profile("baselines", "smoke"), tmp_path)
    partial, done = tmp_path / "f0_cache_bn_smoke", tmp_path / "energy_cache_bn_smoke"
    partial.mkdir()
    (partial / "bn_0001_pitch.npy").write_bytes(b"")  # what a session killed during the pre-computation leaves
    done.mkdir()
    (done / "energy_stats.npy").write_bytes(b"")
    _drop_partial_caches(config)
    assert not partial.exists() and done.is_dir()
