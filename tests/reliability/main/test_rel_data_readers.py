"""Damaged rows become named quarantine rows (file, line, reason, fix) instead of tracebacks or silent
corruption; a file that is unusable as a whole is one clear error; the rest of the corpus is still prepared."""

import json

import numpy as np
import pytest
from rel_data_corpora import FAST, KN, build_corpus, index_file, speech, write

from nbhelpers.data.pipeline import prepare
from nbhelpers.data.sources import read_source
from nbhelpers.data.validate import FIXES, DataValidationError, SourceError
from nbhelpers.paths import Workspace

BAD_UTF8 = "ನಮಸ್ಕಾರ".encode() + b"\xff\xfe broken \xc3("


def _prepare(source, tmp_path, **kw):
    return prepare(source, "r", "kn", workspace=Workspace(tmp_path / "ws"), clean=FAST, workers=1, exports=(), **kw)


def _damage_last_line(path, replacement: bytes) -> int:
    """Replace the last line of ``path`` with ``replacement``; returns its 1-based line number."""
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    lines[-1] = replacement
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def _only_rejected(result, reason: str, where: str) -> dict:
    assert result.stats["read"] == result.stats["kept"] + result.stats["rejected"]
    assert [r["reason"] for r in result.rejected] == [reason], result.rejected
    row = result.rejected[0]
    assert row["source"] == where and row["fix"] == FIXES[reason] and row["detail"]
    return row


@pytest.mark.parametrize("fmt", ["ljspeech", "openslr", "common_voice", "folder", "jsonl"])
def test_invalid_utf8_line_is_one_quarantined_row(tmp_path, fmt):
    source = build_corpus(fmt, tmp_path / "src", n=3)
    index = index_file(fmt, source)
    line = _damage_last_line(index, BAD_UTF8)
    result = _prepare(source, tmp_path)
    _only_rejected(result, "bad_encoding", f"{index}:{line}")
    assert result.stats["kept"] == 2


def test_invalid_utf8_sidecar_transcript(tmp_path):
    for i in range(2):
        write(tmp_path / "src" / f"knm_00001_{i}.wav", speech("kn", 0), 22050)
        (tmp_path / "src" / f"knm_00001_{i}.txt").write_bytes(KN[0].encode() if i == 0 else BAD_UTF8)
    result = _prepare(tmp_path / "src", tmp_path, format="folder")
    _only_rejected(result, "bad_encoding", str(tmp_path / "src" / "knm_00001_1.wav"))


def test_hf_folder_with_undecodable_text_value(tmp_path):
    import datasets

    wav = write(tmp_path / "clip.wav", speech("kn", 0), 22050)
    ds = datasets.Dataset.from_dict({"audio": [str(wav)] * 2, "text": [KN[0].encode(), BAD_UTF8],
                                     "id": ["knm_00001_0", "knm_00001_1"]})
    ds.save_to_disk(str(tmp_path / "hf"))
    result = _prepare(tmp_path / "hf", tmp_path)
    _only_rejected(result, "bad_encoding", f"{tmp_path / 'hf'}[1]")
    assert result.kept[0]["raw_text"] == KN[0]


def test_hf_folder_with_broken_metadata_is_one_clear_error(tmp_path):
    source = build_corpus("hf", tmp_path / "src")
    (source / "state.json").write_bytes(b"\xff\xfe{not json")
    with pytest.raises(SourceError, match=str(source)):
        read_source(source, "kn")


def test_openslr_tab_inside_the_text_keeps_every_word(tmp_path):
    source = build_corpus("openslr", tmp_path / "src", n=1)
    (source / "line_index.tsv").write_text("knm_00001_0000\tನಮಸ್ಕಾರ, ಇಂದು\tಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ\n", encoding="utf-8")
    [utt] = read_source(source, "kn")
    assert utt.text == "ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ"


def test_common_voice_header_with_bom_keeps_the_speakers(tmp_path):
    source = build_corpus("common_voice", tmp_path / "src")
    table = source / "validated.tsv"
    table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes())
    assert [u.speaker for u in read_source(source, "kn")] == ["cv_client0abcde", "cv_client1abcde"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_wav_with_nan_or_inf_is_quarantined(tmp_path, bad):
    source = build_corpus("jsonl", tmp_path / "src")
    audio = speech("kn", 0)
    audio[len(audio) // 2: len(audio) // 2 + 40] = bad
    write(source.parent / "wavs" / "knm_00001_0000.wav", audio, 22050, subtype="FLOAT")
    result = _prepare(source, tmp_path)
    row = _only_rejected(result, "invalid_samples", f"{source}:1")
    assert "40" in row["detail"]
    assert result.stats["kept"] == 1


def test_json_manifest_with_bom(tmp_path):
    source = build_corpus("json", tmp_path / "src")
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    assert [u.problem for u in read_source(source, "kn")] == [None, None]


def test_bad_jsonl_line_is_named_by_its_line_number(tmp_path):
    source = build_corpus("jsonl", tmp_path / "src", n=3)
    lines = source.read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join([lines[0], "", lines[1][:-5], lines[2]]) + "\n", encoding="utf-8")
    result = _prepare(source, tmp_path)
    row = _only_rejected(result, "malformed_row", f"{source}:3")
    assert "JSON" in row["detail"] and result.stats["kept"] == 2


@pytest.mark.parametrize("field, value, words", [("duration", "abc", "duration"), ("duration", -1, "duration"),
                                                 ("audio_path", None, "audio_path"), ("audio_path", 7, "audio_path"),
                                                 ("text", None, "text"), ("language", ["kn"], "language")])
def test_json_field_of_the_wrong_type_is_a_named_row(tmp_path, field, value, words):
    source = build_corpus("jsonl", tmp_path / "src")
    items = [json.loads(x) for x in source.read_text(encoding="utf-8").splitlines()]
    items[1][field] = value
    source.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items), encoding="utf-8")
    result = _prepare(source, tmp_path)
    row = _only_rejected(result, "malformed_row", f"{source}:2")
    assert words in row["detail"] and result.stats["kept"] == 1


def test_truncated_json_document_is_one_clear_error(tmp_path):
    source = build_corpus("json", tmp_path / "src")
    source.write_text(source.read_text(encoding="utf-8")[:-10], encoding="utf-8")
    with pytest.raises(SourceError, match=rf"{source}:1:\d+: not valid JSON"):
        read_source(source, "kn")


def test_utf16_index_is_read(tmp_path):
    source = build_corpus("ljspeech", tmp_path / "src")
    meta = source / "metadata.csv"
    meta.write_bytes(meta.read_text(encoding="utf-8").encode("utf-16"))
    assert [u.problem for u in read_source(source, "kn")] == [None, None]


@pytest.mark.parametrize("fmt", ["ljspeech", "openslr", "common_voice", "folder", "json", "jsonl"])
def test_empty_corpus_is_one_clear_error(tmp_path, fmt):
    source = build_corpus(fmt, tmp_path / "src", n=1)
    index = index_file(fmt, source)
    index.write_text("client_id\tpath\tsentence\n" if fmt == "common_voice" else "", encoding="utf-8")
    with pytest.raises(DataValidationError, match="no rows"):
        _prepare(source, tmp_path)
    assert not (tmp_path / "ws" / "data" / "r").exists()
