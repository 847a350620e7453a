"""Hash-based splits and the DataSpeech-style annotations."""

import numpy as np
import pytest
from scipy.signal import fftconvolve

from nbhelpers.data.annotate import (
    MONOTONY_BINS,
    PITCH_BINS,
    SNR_BINS,
    c50_estimate,
    describe,
    measure,
    pitch_track,
    snr_estimate,
    to_bin,
)
from nbhelpers.data.splits import assign_splits

IDS = [f"utt_{i:05d}" for i in range(2000)]


def test_splits_are_deterministic_and_close_to_fractions():
    a = assign_splits(IDS)
    assert a == assign_splits(list(reversed(IDS)))
    share = {s: sum(v == s for v in a.values()) / len(IDS) for s in ("train", "validation", "test")}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["validation"] - 0.1) < 0.02
    b = assign_splits(IDS, fractions=(0.5, 0.25, 0.25))
    assert abs(sum(v == "train" for v in b.values()) / len(IDS) - 0.5) < 0.04


def test_adding_data_never_moves_existing_items():
    before = assign_splits(IDS[:500])
    after = assign_splits(IDS)
    assert all(after[i] == before[i] for i in IDS[:500])


def test_speaker_disjoint():
    speakers = [f"spk{i % 40}" for i in range(len(IDS))]
    a = assign_splits(IDS, speakers, speaker_disjoint=True)
    split_speakers = {s: {spk for i, spk in zip(IDS, speakers, strict=True) if a[i] == s} for s in ("train", "validation", "test")}
    assert not split_speakers["train"] & split_speakers["validation"]
    assert not split_speakers["train"] & split_speakers["test"]
    assert all(split_speakers.values())


def test_tiny_datasets_get_every_split():
    a = assign_splits(IDS[:5])
    assert set(a.values()) == {"train", "validation", "test"}
    with pytest.raises(ValueError, match="summing to 1"):
        assign_splits(IDS, fractions=(0.8, 0.1, 0.2))


def _voice(f0, seconds=1.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)).astype(np.float32) * 0.2


@pytest.mark.parametrize("f0", [95.0, 150.0, 230.0])
def test_pitch_track_finds_f0(f0):
    track = pitch_track(_voice(f0))
    voiced = track[np.isfinite(track)]
    assert len(voiced) > 0.9 * len(track)
    assert abs(np.median(voiced) - f0) / f0 < 0.02
    assert np.all(np.isnan(pitch_track(np.zeros(16000, np.float32))))


def test_snr_falls_with_noise_and_c50_falls_with_reverb():
    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(8000), _voice(140, 0.4), np.zeros(4000), _voice(170, 0.5), np.zeros(8000)])
    snr = [snr_estimate((speech + rng.standard_normal(len(speech)) * s).astype(np.float32)) for s in (1e-4, 1e-2, 5e-2)]
    assert snr[0] > snr[1] > snr[2]
    t = np.arange(int(0.8 * 16000)) / 16000
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / 0.8)
    ir[0] = 1.0
    roomy = fftconvolve(speech, ir * 0.3)[: len(speech)].astype(np.float32)
    assert c50_estimate(speech.astype(np.float32)) > c50_estimate(roomy) + 10


def test_bins_and_descriptions():
    assert to_bin(-5, [10, 20, 30, 40, 50, 60], SNR_BINS) == "very noisy"
    assert to_bin(75, [10, 20, 30, 40, 50, 60], SNR_BINS) == "very quiet"
    assert to_bin(float("nan"), [1, 2, 3, 4, 5, 6], MONOTONY_BINS) == "moderate intonation"
    audio = _voice(120, 2.0)
    rows = [dict(id=f"u{i}", speaker="spkA", gender="male", **measure(audio, audio, "ನಮಸ್ಕಾರ ಇಂದು", "kn"))
            for i in range(4)]
    describe(rows, speaker_names={"spkA": "Ravi"})
    for r in rows:
        assert r["pitch"] in PITCH_BINS
        assert "Ravi" in r["text_description"] and r["speed"] in r["text_description"]
    assert len({r["text_description"] for r in rows}) > 1  # several templates
    odd = [dict(rows[0], gender="nonbinary", speaker="spkB")]
    describe(odd)
    assert odd[0]["pitch"] in PITCH_BINS and "the speaker" in odd[0]["text_description"].lower()
