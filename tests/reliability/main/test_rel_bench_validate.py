"""`python -m nbhelpers.bench validate` names what is wrong: a missing path exits non-zero naming it; a float WAV
above 1.0 is "float samples beyond [-1, 1]" (not "clipped"), a cut-off WAV is "truncated" with the frames the
header promised and the frames held (not "silent"); each fault comes with its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.measure.audiocheck import audio_faults
from nbhelpers.measure.harness import CONTEXT_FIELDS, METRIC_FIELDS, SCHEMA, validate_record

PROJECT = Path(__file__).resolve().parents[3]
SR = 16000


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbhelpers.bench", "validate", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(PROJECT), "PATH": ""})


def speech(seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (level * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_missing_path_exits_nonzero_naming_it(tmp_path):
    missing = tmp_path / "bench" / "records.jsonl"
    done = bench(missing)
    assert done.returncode == 1 and f"{missing}: does not exist" in done.stderr and "Traceback" not in done.stderr


def test_records_file_valid_empty_and_broken(tmp_path):
    record = {k: "x" for k in CONTEXT_FIELDS} | {"schema": SCHEMA} | {k: 1.0 for k in METRIC_FIELDS}
    validate_record(record)
    good = tmp_path / "records.jsonl"
    good.write_text(json.dumps(record) + "\n")
    assert bench(good).returncode == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = bench(empty)
    assert done.returncode == 1 and "holds no records" in done.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(record) + "\n" + json.dumps(record | {"rtf": "fast"}) + "\n")
    done = bench(broken)
    assert done.returncode == 1 and f"{broken}:2:" in done.stderr and "rtf must be a finite number" in done.stderr
    binary = tmp_path / "notes.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    done = bench(binary)
    assert done.returncode == 1 and str(binary) in done.stderr and "Traceback" not in done.stderr


def test_float_wav_beyond_full_scale_is_not_called_clipped(tmp_path):
    wav = tmp_path / "loud.wav"
    sf.write(wav, speech() * 6.4, SR, subtype="FLOAT")  # peak 3.2: a scale error, nothing was cut off
    faults = audio_faults(wav)
    assert [f.label for f in faults] == ["float samples beyond [-1, 1]"]
    assert "peak 3.2" in faults[0].detail and "normalise" in faults[0].fix
    done = bench(wav)
    assert done.returncode == 1 and "float samples beyond [-1, 1]: peak 3.2 (FLOAT WAV); normalise" in done.stderr
    assert "clipped" not in done.stderr


def test_truncated_wav_is_not_called_silent(tmp_path):
    wav = tmp_path / "cut.wav"
    audio = np.concatenate([np.zeros(SR // 2, np.float32), speech(1.0)])  # 0.5 s of leading silence, then sound
    sf.write(wav, audio, SR, subtype="PCM_16")
    data = wav.read_bytes()
    wav.write_bytes(data[: 44 + 2 * 6000])  # the copy stopped 6000 frames in, inside the silence
    faults = audio_faults(wav)
    assert [f.label for f in faults] == ["truncated"]
    assert faults[0].detail == f"header says {len(audio)} frames, file holds 6000"
    done = bench(wav)
    assert done.returncode == 1 and f"truncated: header says {len(audio)} frames, file holds 6000" in done.stderr
    assert "silent" not in done.stderr and "re-run the stage" in done.stderr
    wav.write_bytes(data[:30])  # cut inside the header
    assert [f.label for f in audio_faults(wav)] == ["truncated"]


@pytest.mark.parametrize("kind,label", [("clipped", "clipped"), ("silent", "silent"), ("nan", "invalid samples"),
                                        ("not_audio", "unreadable"), ("empty", "empty")])
def test_real_faults_keep_their_names(tmp_path, kind, label):
    wav = tmp_path / f"{kind}.wav"
    if kind == "clipped":
        sf.write(wav, np.clip(speech() * 4, -1, 1), SR, subtype="PCM_16")
    elif kind == "silent":
        sf.write(wav, speech() * 1e-4, SR, subtype="PCM_16")
    elif kind == "nan":
        audio = speech()
        audio[100:110] = np.nan
        sf.write(wav, audio, SR, subtype="FLOAT")
    elif kind == "not_audio":
        wav.write_text("this is not audio\n")
    else:
        sf.write(wav, np.zeros(0, np.float32), SR, subtype="PCM_16")
    assert [f.label for f in audio_faults(wav)] == [label]


def test_folder_of_clips_names_each_faulty_one(tmp_path):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    sf.write(gallery / "ok.wav", speech(), SR, subtype="PCM_16")
    sf.write(gallery / "loud.wav", speech() * 3, SR, subtype="FLOAT")
    assert audio_faults(gallery / "ok.wav") == []
    done = bench(gallery)
    assert done.returncode == 1 and f"{gallery}: 1 of 2 clip(s) sound" in done.stdout
    assert str(gallery / "loud.wav") in done.stderr and "ok.wav" not in done.stderr
    (gallery / "loud.wav").unlink()
    assert bench(gallery).returncode == 0
