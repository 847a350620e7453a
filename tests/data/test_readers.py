"""Every reader on a small generated fixture; audio in wav/flac/mp3/ogg at any rate, channels, bit depth."""

import json

import datasets
import numpy as np
import pytest

from nbhelpers.data.audio import load_audio
from nbhelpers.data.sources import detect_format, read_source

TEXT = "ನಮಸ್ಕಾರ, ಇಂದು ಮಳೆ."


@pytest.mark.parametrize("ext, rate, channels, subtype", [
    (".wav", 8000, 1, "PCM_U8"), (".wav", 48000, 2, "PCM_24"), (".wav", 16000, 1, "FLOAT"),
    (".flac", 44100, 2, "PCM_16"), (".mp3", 24000, 1, None), (".ogg", 32000, 2, "VORBIS"),
])
def test_load_any_audio_format(tmp_path, make_speech, write_audio, ext, rate, channels, subtype):
    audio = make_speech("kn", 0, rate=rate)
    data = np.stack([audio] * channels, axis=1) if channels == 2 else audio
    path = write_audio(tmp_path / f"a{ext}", data, rate, **({"subtype": subtype} if subtype else {}))
    loaded, sr = load_audio(path)
    assert sr == rate and loaded.shape[1] == channels
    assert abs(loaded.shape[0] - len(audio)) < 0.06 * rate  # mp3 adds encoder padding
    assert np.max(np.abs(loaded)) > 0.1


def test_ljspeech(tmp_path, make_speech, write_audio):
    write_audio(tmp_path / "wavs" / "knf_00001_0001.wav", make_speech(), 22050)
    (tmp_path / "metadata.csv").write_text(f"knf_00001_0001|{TEXT}|{TEXT}\nmissing_01|{TEXT}|{TEXT}\nbad\n",
                                           encoding="utf-8")
    assert detect_format(tmp_path) == "ljspeech"
    utts = read_source(tmp_path, "kn")
    assert [u.id for u in utts] == ["knf_00001_0001", "missing_01", "bad"]
    assert utts[0].speaker == "knf_00001" and utts[0].gender == "female" and utts[0].audio_path.endswith(".wav")
    assert utts[1].problem == "missing_audio" and utts[2].problem == "malformed_row"


def test_openslr_multiple_parts(tmp_path, make_speech, write_audio):
    for part, spk in (("kn_in_female", "knf_00118"), ("kn_in_male", "knm_00200")):
        write_audio(tmp_path / part / "wavs" / f"{spk}_00010032814.wav", make_speech(), 48000)
        (tmp_path / part / "line_index.tsv").write_text(f"{spk}_00010032814\t{TEXT}\n", encoding="utf-8")
    assert detect_format(tmp_path) == "openslr"
    utts = read_source(tmp_path, "kn")
    assert {(u.speaker, u.gender) for u in utts} == {("knf_00118", "female"), ("knm_00200", "male")}
    assert all(u.text == TEXT and u.problem is None for u in utts)


def test_common_voice_tsv_with_mp3(tmp_path, make_speech, write_audio):
    write_audio(tmp_path / "clips" / "common_voice_bn_1.mp3", make_speech("bn", 0, rate=32000), 32000)
    (tmp_path / "validated.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\tgender\n"
        "abcdef0123456789\tcommon_voice_bn_1.mp3\tনমস্কার, আজ বৃষ্টি হবে।\t2\tfemale_feminine\n"
        "ffff\tcommon_voice_bn_2.mp3\tআরেকটি বাক্য।\t1\t\n", encoding="utf-8")
    assert detect_format(tmp_path) == "common_voice"
    utts = read_source(tmp_path, "bn")
    assert utts[0].speaker == "cv_abcdef012345" and utts[0].gender == "female" and utts[0].problem is None
    assert utts[1].problem == "missing_audio"


@pytest.mark.parametrize("kind", ["load_from_disk", "parquet"])
def test_hf_dataset_with_column_mapping(tmp_path, make_speech, write_audio, kind):
    wav = write_audio(tmp_path / "clip.wav", make_speech(), 22050)
    ds = datasets.Dataset.from_dict({"speech": [str(wav)], "sentence": [TEXT], "client": ["spk1"]})
    ds = ds.cast_column("speech", datasets.Audio())
    if kind == "load_from_disk":
        datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "hf"))
        source = tmp_path / "hf"
    else:
        ds = ds.cast_column("speech", datasets.Audio(decode=False)).map(
            lambda r: {"speech": {"bytes": open(r["speech"]["path"], "rb").read(), "path": "clip.wav"}})
        ds.to_parquet(str(tmp_path / "data.parquet"))
        source = tmp_path / "data.parquet"
    utts = read_source(source, "kn", columns={"audio": "speech", "text": "sentence", "speaker": "client"})
    assert len(utts) == 1 and utts[0].text == TEXT and utts[0].speaker == "spk1"
    assert utts[0].audio_bytes or utts[0].audio_path
    with pytest.raises(ValueError, match="column"):
        read_source(source, "kn", format="hf", columns={"audio": "nope"})


def test_hf_hub_id_is_refused_offline():
    with pytest.raises(RuntimeError, match="hub downloads are disabled"):
        read_source("hf:ai4bharat/some-dataset", "kn")


def test_folder_with_transcripts_file_and_sidecars(tmp_path, make_speech, write_audio):
    write_audio(tmp_path / "a" / "one.flac", make_speech(), 16000)
    (tmp_path / "a" / "transcripts.txt").write_text(f"one.flac\t{TEXT}\ntwo.wav\t{TEXT}\n", encoding="utf-8")
    utts = read_source(tmp_path / "a", "kn")
    assert [u.problem for u in utts] == [None, "missing_audio"]
    write_audio(tmp_path / "b" / "x.ogg", make_speech(), 24000)
    (tmp_path / "b" / "x.txt").write_text(TEXT, encoding="utf-8")
    write_audio(tmp_path / "b" / "y.wav", make_speech(), 24000)
    utts = {u.id: u for u in read_source(tmp_path / "b", "kn", format="folder")}
    assert utts["x"].text == TEXT and utts["y"].problem == "empty_text"


def test_json_manifest(tmp_path, make_speech, write_audio):
    write_audio(tmp_path / "wavs" / "u1.wav", make_speech(), 22050)
    items = [{"audio_path": "wavs/u1.wav", "text": TEXT, "language": "kn", "duration": 3.2, "gender": "F"},
             {"audio_path": "wavs/u2.wav", "text": TEXT, "language": "kn", "duration": 1.0},
             {"text": "no audio"}]
    (tmp_path / "m.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    utts = read_source(tmp_path / "m.json", "kn")
    assert utts[0].duration == 3.2 and utts[0].audio_path.endswith("u1.wav") and utts[0].gender == "female"
    assert [u.problem for u in utts] == [None, "missing_audio", "malformed_row"]
