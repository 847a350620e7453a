"""LibriTTS reader on an espeak-made stand-in tree with the real layout (24 kHz wavs, trans.tsv, sidecars)."""

from nbhelpers.data.pipeline import prepare
from nbhelpers.data.sources import detect_format, read_source

TEXT = "আমার সোনার বাংলা।"  # the stand-in audio is espeak-ng Bangla; the layout is LibriTTS's
ORIGINAL = "আমার সোনার বাংলা!"  # a different original transcript, to see which one is read


def libritts_tree(root, make_speech, write_audio):
    """Two readers, two chapters: trans.tsv rows (one bad, one without audio) and sidecar-only clips."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "SPEAKERS.txt").write_text(";READER|GENDER|SUBSET|NAME\n19   | F | train-clean-100 | Kara\n"
                                       "103  | M | train-clean-100 | John\n", encoding="utf-8")
    sub = root / "train-clean-100"
    chapter = sub / "19" / "198"
    for utt in ("19_198_000000_000000", "19_198_000000_000001"):
        write_audio(chapter / f"{utt}.wav", make_speech("bn", 0), 24000)
        (chapter / f"{utt}.normalized.txt").write_text(f"{TEXT}", encoding="utf-8")
        (chapter / f"{utt}.original.txt").write_text(f"{ORIGINAL}", encoding="utf-8")
    (chapter / "19_198.trans.tsv").write_text(
        f"19_198_000000_000000\t{ORIGINAL}\t{TEXT}\n"
        f"19_198_000000_000001\t{ORIGINAL}\t{TEXT}\n"
        f"19_198_000000_000009\t{ORIGINAL}\t{TEXT}\n"
        "19_198_000000_000002\n", encoding="utf-8")
    other = sub / "103" / "1240"  # no trans.tsv: the sidecar is the transcript
    write_audio(other / "103_1240_000000_000000.wav", make_speech("bn", 1), 24000)
    (other / "103_1240_000000_000000.normalized.txt").write_text(TEXT, encoding="utf-8")
    write_audio(other / "103_1240_000000_000001.wav", make_speech("bn", 1), 24000)  # no transcript at all
    return sub


def test_libritts_layout(tmp_path, make_speech, write_audio):
    sub = libritts_tree(tmp_path, make_speech, write_audio)
    assert detect_format(sub) == "libritts"
    utts = {u.id: u for u in read_source(sub, "bn")}
    assert set(utts) == {"19_198_000000_000000", "19_198_000000_000001", "19_198_000000_000009",
                         "19_198_000000_000002", "103_1240_000000_000000", "103_1240_000000_000001"}
    good = utts["19_198_000000_000000"]
    assert good.text == f"{TEXT}" and good.speaker == "19" and good.gender == "female"
    assert good.audio_path.endswith("19/198/19_198_000000_000000.wav")
    assert good.source.endswith("19_198.trans.tsv:1")
    missing = utts["19_198_000000_000009"]
    assert missing.problem == "missing_audio" and missing.source.endswith("19_198.trans.tsv:3")
    bad = utts["19_198_000000_000002"]
    assert bad.problem == "malformed_row" and bad.source.endswith("19_198.trans.tsv:4")
    side = utts["103_1240_000000_000000"]
    assert side.text == TEXT and side.speaker == "103" and side.gender == "male" and side.problem is None
    none = utts["103_1240_000000_000001"]
    assert none.problem == "empty_text" and "103_1240_000000_000001.normalized.txt" in none.detail
    original = {u.id: u for u in read_source(sub, "bn", text="original")}
    assert original["19_198_000000_000000"].text == f"{ORIGINAL}"


def test_libritts_through_data_prep(tmp_path, make_speech, write_audio):
    """The reader feeds data prep end to end: two clean rows at 24 kHz become 22.05 kHz export rows."""
    sub = libritts_tree(tmp_path / "src", make_speech, write_audio)
    out = prepare(sub, "libri", "bn", workspace=tmp_path / "ws", split_fractions=(1.0, 0.0, 0.0))
    assert sorted(r["id"] for r in out.kept) == ["103_1240_000000_000000", "19_198_000000_000000",
                                                 "19_198_000000_000001"]
    reasons = {r["id"]: r["reason"] for r in out.rejected}
    assert reasons == {"19_198_000000_000009": "missing_audio", "19_198_000000_000002": "malformed_row",
                       "103_1240_000000_000001": "empty_text"}
    assert len((out.paths.ljspeech / "metadata.csv").read_text(encoding="utf-8").splitlines()) == 3
