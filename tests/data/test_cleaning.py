"""Each cleaning step: target rates, mono, 16-bit, loudness within 0.5 LU, trimmed silence, clipping."""

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from nbhelpers.data.audio import clipped_fraction, speech_bounds
from nbhelpers.data.clean import CleanConfig, clean_item
from nbhelpers.data.sources import Utterance
from nbhelpers.data.text import normalize_text

TEXT = "ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುವ ಸಾಧ್ಯತೆ ಇದೆ."


def _clean(tmp_path, write_audio, audio, rate, cfg=None, **kw):
    src = write_audio(tmp_path / "src.wav", audio, rate, **kw)
    utt = Utterance(id="knm_00001_0001", text=TEXT, language="kn", speaker="knm_00001", audio_path=str(src))
    rec = clean_item(utt, cfg or CleanConfig(annotate=False), tmp_path / "out")
    assert rec["status"] == "kept", rec
    return rec


def test_every_target_rate_mono_pcm16(tmp_path, make_speech, write_audio):
    mono = make_speech("kn", 0, rate=48000)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    rec = _clean(tmp_path, write_audio, stereo, 48000, subtype="PCM_24")
    expected = {"parler": 44100, "ljspeech": 22050, "pocket": 24000}
    for name, rate in expected.items():
        info = sf.info(str(tmp_path / "out" / rec["files"][name]))
        assert (info.samplerate, info.channels, info.subtype) == (rate, 1, "PCM_16")
        assert abs(info.duration - rec["duration"]) < 2 / rate + 1e-3
    assert rec["source_rate"] == 48000 and rec["source_channels"] == 2
    assert rec["text"] == normalize_text(TEXT, "kn")


@pytest.mark.parametrize("target", [-23.0, -18.0])
def test_loudness_within_half_lu_of_target(tmp_path, make_speech, write_audio, target):
    quiet = make_speech("kn", 3, rate=22050) * 0.05
    rec = _clean(tmp_path, write_audio, quiet, 22050, cfg=CleanConfig(annotate=False, target_lufs=target))
    for name in ("parler", "ljspeech", "pocket"):
        data, sr = sf.read(str(tmp_path / "out" / rec["files"][name]))
        assert abs(pyln.Meter(sr).integrated_loudness(data) - target) < 0.5


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_leading_and_trailing_silence_is_trimmed(tmp_path, make_speech, write_audio, vad):
    padded = make_speech("kn", 0, rate=16000, pad_s=1.5)
    speech_only = make_speech("kn", 0, rate=16000, pad_s=0.0)
    rec = _clean(tmp_path, write_audio, padded, 16000, cfg=CleanConfig(annotate=False, vad=vad, trim_pad_s=0.1))
    assert rec["vad"] == vad
    raw = len(padded) / 16000
    assert rec["duration"] < raw - 2.4  # at least 2.4 of the 3 s of padding removed
    assert rec["duration"] > len(speech_only) / 16000 - 0.35  # and no real speech lost
    active = np.flatnonzero(np.abs(padded) > 0.01)  # where the signal really is
    start, end, _ = speech_bounds(padded, 16000, method=vad, pad_s=0.0)
    assert abs(start - active[0]) / 16000 < 0.15 and abs(end - active[-1]) / 16000 < 0.25


def test_clipping_is_measured(make_speech):
    audio = make_speech("kn", 0)
    assert clipped_fraction(audio) == 0.0
    assert clipped_fraction(np.clip(audio * 20, -1, 1)) > 0.05
