"""Quality metrics on known inputs: identical signals, time shifts, pure tones, noise, fixed texts."""

import numpy as np
import pytest

from nbhelpers.measure import quality as q


def _tone(freq, seconds=1.0, sr=16_000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_text_metrics_on_fixed_strings():
    assert q.cer("Hello, world!", "hello world") == 0.0
    assert q.wer("Hello, world!", "hello there world") == pytest.approx(0.5)
    assert q.cer("abcd", "abed") == pytest.approx(0.25)
    assert q.cer("ನಮಸ್ಕಾರ।", "ನಮಸ್ಕಾರ") == 0.0  # danda is punctuation, vowel signs are kept
    assert q.cer("ನಮಸ್ಕಾರ", "ನಮಸಕಾರ") > 0
    assert q.wer("a b", "") == 1.0
    with pytest.raises(ValueError, match="empty"):
        q.cer("?!", "x")


def test_identical_signals_give_zero_mcd_and_matching_f0(speech):
    audio, sr, _ = speech
    assert q.mcd_dtw(audio, sr, audio, sr) == 0.0
    f0 = q.f0_metrics(audio, sr, audio, sr)
    assert f0["f0_rmse_hz"] == pytest.approx(0.0, abs=1e-6) and f0["vuv_error"] == 0.0


def test_time_shifted_copy_still_aligns(speech, noise):
    audio, sr, _ = speech
    shifted = np.concatenate([np.zeros(int(0.1 * sr), np.float32), audio, np.zeros(int(0.05 * sr), np.float32)])
    shifted_mcd = q.mcd_dtw(audio, sr, shifted, sr)
    assert shifted_mcd < 0.2
    assert q.mcd_dtw(audio, sr, noise[0], sr) > 5.0
    f0 = q.f0_metrics(audio, sr, shifted, sr)
    assert f0["f0_rmse_hz"] < 1.0 and f0["vuv_error"] < 0.02
    # resampling does not break alignment either
    import soxr
    assert q.mcd_dtw(audio, sr, soxr.resample(shifted, sr, 24_000), 24_000) < 0.4


def test_f0_rmse_and_voicing_on_tones(speech, noise):
    f0 = q.f0_metrics(_tone(150), 16_000, _tone(165), 16_000)
    assert f0["f0_rmse_hz"] == pytest.approx(15.0, abs=0.5) and f0["vuv_error"] < 0.02
    track = q.f0_track(_tone(220), 16_000)
    assert np.median(track[track > 0]) == pytest.approx(220.0, abs=1.0)
    audio, sr, _ = speech
    against_noise = q.f0_metrics(audio, sr, *noise)
    assert against_noise["f0_rmse_hz"] is None and against_noise["vuv_error"] > 0.3


def test_pesq_stoi_only_for_time_aligned(speech):
    audio, sr, _ = speech
    same = q.pesq_stoi(audio, sr, audio, sr)
    assert same["pesq_wb"] > 4.0 and same["stoi"] > 0.99
    degraded = q.pesq_stoi(audio, sr, audio + np.random.default_rng(1).normal(0, 0.05, len(audio)).astype(np.float32), sr)
    assert degraded["pesq_wb"] < same["pesq_wb"] - 1 and degraded["stoi"] < same["stoi"]
    with pytest.raises(ValueError, match="time-aligned"):
        q.pesq_stoi(audio, sr, np.concatenate([audio, audio]), sr)


def test_dnsmos_of_clean_speech_beats_white_noise(speech, noise):
    audio, sr, _ = speech
    clean, noisy = q.dnsmos(audio, sr), q.dnsmos(*noise)
    assert set(clean) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert clean["dnsmos_ovrl"] > noisy["dnsmos_ovrl"] + 1.0
    assert clean["dnsmos_p808"] > noisy["dnsmos_p808"]


def test_whisper_transcribes_real_speech(speech):
    audio, sr, text = speech
    heard = q.transcribe(audio, sr, "en")
    assert q.cer(text, heard) < 0.4
    assert q.cer(heard, q.transcribe(audio, sr, "en")) == 0.0  # same signal, same transcript


def test_aligned_pairs_score_a_degraded_copy_lower_and_say_why_when_nothing_scores(speech):
    audio, sr, _ = speech
    noisy = audio + np.random.default_rng(2).normal(0, 0.05, len(audio)).astype(np.float32)
    same = q.aligned_pairs_quality([(audio, audio)], sr)
    worse = q.aligned_pairs_quality([(audio, noisy), (audio, audio[: len(audio) // 2])], sr)
    assert same["pairs"] == 1 and same["pesq_wb_mean"] > 4.0 and same["stoi_mean"] > 0.99
    assert worse["pairs"] == 1 and worse["unscored"] == 1  # the half-length pair is not time-aligned
    assert worse["pesq_wb_mean"] < same["pesq_wb_mean"] - 1 and worse["stoi_mean"] < same["stoi_mean"]
    silent = np.zeros(sr, np.float32)
    assert "not_available" in q.aligned_pairs_quality([(silent, silent)], sr)
