"""Stage 08's English front end on CPU (tiny random-weight models: mechanics only): data prep's English espeak-ng
corpus (LJ Speech layout, three speakers, as an LJ Speech / LibriTTS stand-in) trains a multi-speaker FastSpeech2
through espeak-ng en-us phonemes and a HiFi-GAN; the bundle speaks English as any of its speakers, 06 lists it as
``fastspeech2-hifigan-en``, and multi-speaker training without speakers is refused before it starts."""

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.baselines.__main__ import main
from nbhelpers.baselines.synth import latest_bundle, load_bundle
from nbhelpers.bench.systems import discover
from nbhelpers.data import prepare_smoke_dataset
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples

ENGLISH = ["--set", "dataset=en_smoke", "--set", "language=en", "--set", "fastspeech2_max_steps=2",
           "--set", "hifigan_max_steps=1"]


def test_english_multi_speaker_fastspeech2_trains_and_speaks_as_each_speaker(isolated_workspace, tmp_path):
    ws = Workspace(isolated_workspace)
    prepare_smoke_dataset("en", ws, n_sentences=15, name="en_smoke")
    assert main(["train", "--profile", "smoke", "--workspace", str(ws.root), *ENGLISH,
                 "--set", "multi_speaker=true"]) == 0
    rec = read_records(ws.root / "run_log.jsonl", "08_baselines")[-1]
    assert rec["status"] == "done" and rec["metrics"]["language"] == "en" and rec["metrics"]["speakers"] == 3
    runs = list((ws.root / "baselines" / "fastspeech2" / "runs").glob("fastspeech2_en-*"))
    assert len(runs) == 1

    baseline = load_bundle(latest_bundle(ws))
    assert baseline.language == "en" and baseline.speakers == ["enf_00002", "enm_00001", "enm_00003"]
    first = baseline.synthesize("The quick brown fox.")
    other = baseline.synthesize("The quick brown fox.", speaker="enm_00003")
    assert len(first) > 0 and len(other) > 0
    n = min(len(first), len(other))
    assert not np.allclose(first[:n], other[:n], atol=1e-4)  # a different speaker embedding, different audio
    with pytest.raises(ValueError, match="unknown speaker 'nobody'; this model speaks as enf_00002"):
        baseline.synthesize("Hello.", speaker="nobody")
    rows = read_samples(ws.root / rec["outputs"]["samples"].removeprefix("./"))
    assert rows[0]["text"] == "The quick brown fox jumps over the lazy dog."
    assert rows[0]["model_state"].endswith("speaking as enf_00002 (one of 3 speakers)")
    audio, rate = sf.read(rows[0]["path"])
    assert rate == 22050 and len(audio) > 0

    variants, skipped = discover(ws, load_profile("bench", "smoke"), only=["fastspeech2-hifigan"])
    assert [v.label for v in variants] == ["fastspeech2-hifigan-en / torch / float32 / cpu"], skipped
    audio, rate = variants[0].load().synth("Good morning.", "en")
    assert rate == 22050 and len(audio) > 0


def test_multi_speaker_without_speakers_is_refused_before_training(bn_export, isolated_workspace, capsys):
    """tests/vits' Bangla corpus has no speakers.csv: nothing to embed, so pre-flight stops with the fix."""
    assert main(["train", "--profile", "smoke", "--workspace", str(isolated_workspace),
                 "--set", "multi_speaker=true"]) == 2
    err = capsys.readouterr().err
    assert "multi_speaker needs a speaker per row and at least two speakers" in err and "speakers.csv is missing" in err
    assert not (isolated_workspace / "baselines" / "fastspeech2").exists()
