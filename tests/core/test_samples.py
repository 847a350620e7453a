"""The samples contract (nbhelpers.samples): rows survive a move of their folder, lengths come from the WAVs, and a
damaged file or a missing clip is an error naming the file, the line and the fix."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.samples import SAMPLES_FILE, read_samples, sample_row, write_samples


def _wav(path, seconds, sr=16000):
    sf.write(path, np.zeros(int(seconds * sr), np.float32), sr)
    return path


def test_rows_round_trip_with_paths_relative_to_the_file(tmp_path):
    folder = tmp_path / "run" / "samples"
    folder.mkdir(parents=True)
    recording = _wav(tmp_path / "run" / "rec.wav", 2.0)
    rows = [sample_row("ನಮಸ್ಕಾರ", _wav(folder / "a.wav", 1.25), "after 5 steps", recording=recording),
            sample_row("ಹೂವು", _wav(folder / "b.wav", 0.5), "random weights", voice="v.wav")]
    index = write_samples(rows, folder)
    assert index == folder / SAMPLES_FILE
    assert '"path": "a.wav"' in index.read_text(encoding="utf-8")  # stored relative: a moved copy still resolves
    moved = tmp_path / "attached"
    shutil.copytree(tmp_path / "run", moved)
    shutil.rmtree(tmp_path / "run")
    back = read_samples(moved / "samples")
    assert [(r["text"], r["model_state"], r["seconds"]) for r in back] == [
        ("ನಮಸ್ಕಾರ", "after 5 steps", 1.25), ("ಹೂವು", "random weights", 0.5)]
    assert back[0]["path"] == str(moved / "samples" / "a.wav") and back[0]["recording"] == str(moved / "rec.wav")
    assert back[1]["voice"] == "v.wav" and "recording" not in back[1]


def test_damaged_lines_and_missing_clips_name_the_file_and_line(tmp_path):
    index = write_samples([sample_row("x", _wav(tmp_path / "a.wav", 1.0), "s"),
                           sample_row("y", _wav(tmp_path / "b.wav", 1.0), "s")], tmp_path)
    (tmp_path / "b.wav").unlink()
    with pytest.raises(FileNotFoundError, match=f"{index}:2: .*b.wav is missing"):
        read_samples(index)
    index.write_text(index.read_text(encoding="utf-8").splitlines()[0] + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{index}:2: not JSON"):
        read_samples(index)
    index.write_text('{"text": "x", "path": "a.wav"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r":1: lacks \['model_state', 'seconds'\]"):
        read_samples(index)
    with pytest.raises(ValueError, match="lacks"):
        write_samples([{"text": "x", "path": "a.wav"}], tmp_path)
    with pytest.raises(FileNotFoundError, match="run that stage"):
        read_samples(tmp_path / "nowhere")
