"""The embedded smoke corpora and the command line."""

import json
import re
import subprocess
import sys

import soundfile as sf

from nbhelpers.data.corpus import SENTENCES, build_smoke_corpus
from nbhelpers.data.sources import read_source
from nbhelpers.paths import PROJECT_ROOT


def test_sentences_have_numbers_and_punctuation():
    for language, sentences in SENTENCES.items():  # English (stage 08's stand-in corpus) is smaller
        assert len(sentences) >= (24 if language == "en" else 40) and len(set(sentences)) == len(sentences)
        assert sum(bool(re.search(r"[\d০-৯೦-೯]", s)) for s in sentences) >= (5 if language == "en" else 15)
        assert all(re.search(r"[.,?!;।]", s) for s in sentences)


def test_corpus_layouts_with_three_speakers_and_varied_audio(tmp_path):
    slr = build_smoke_corpus("kn", tmp_path / "kn", layout="openslr", n_sentences=6, damaged=True)
    lj = build_smoke_corpus("bn", tmp_path / "bn", layout="ljspeech", n_sentences=6, damaged=False)
    assert (slr / "line_index.tsv").is_file() and (lj / "metadata.csv").is_file()
    kn = read_source(slr, "kn")
    bn = read_source(lj, "bn")
    assert len(bn) == 6 and len(kn) == 6 + 6  # six damaged rows
    assert {u.speaker for u in bn} == {"bnm_00001", "bnf_00002", "bnm_00003"}
    formats = {(i.samplerate, i.channels) for i in (sf.info(u.audio_path) for u in bn)}
    assert formats == {(22050, 1), (16000, 1), (44100, 2)}
    assert sum(u.problem == "missing_audio" for u in kn) == 1
    mtime = (slr / "CORPUS_OK").stat().st_mtime_ns
    build_smoke_corpus("kn", tmp_path / "kn", layout="openslr", n_sentences=6, damaged=True)
    assert (slr / "CORPUS_OK").stat().st_mtime_ns == mtime  # not rebuilt


def test_cli_prepare_a_source(tmp_path):
    src = build_smoke_corpus("bn", tmp_path / "src", layout="ljspeech", n_sentences=6, damaged=False)
    out = subprocess.run([sys.executable, "-m", "nbhelpers.data", "prepare", "--profile", "smoke", "--source", str(src),
                          "--name", "bn_cli", "--language", "bn", "--workspace", str(tmp_path / "ws")],
                         capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "bn_cli: read 6 = kept 6 + rejected 0" in out.stdout
    stats = json.loads((tmp_path / "ws" / "data" / "bn_cli" / "stats.json").read_text())
    assert stats["kept"] == 6 and stats["speakers"] == 3
    records = [json.loads(line) for line in (tmp_path / "ws" / "run_log.jsonl").read_text().splitlines()] if (
        tmp_path / "ws" / "run_log.jsonl").exists() else []
    assert records == []  # a one-off --source run is not a stage run


def test_run_profile_writes_stage_record(tmp_path):
    from nbhelpers.data import run_profile
    from nbhelpers.records import last_record

    results = run_profile("smoke", tmp_path / "ws", only=["kn_smoke"],
                          overrides={"smoke_sentences": 6, "smoke_damaged": True})
    r = results["kn_smoke"]
    assert r.stats["read"] == 12 and r.stats["kept"] == 6 and r.stats["rejected"] == 6
    rec = last_record(tmp_path / "ws" / "run_log.jsonl", "01_data_prep")
    assert rec["status"] == "done" and rec["metrics"]["kn_smoke_kept"] == 6
