"""Property-based tests of every reader and of per-item cleaning: random byte damage, encodings (BOM, UTF-16,
invalid UTF-8), wrong field counts, huge and empty fields, random audio damage (NaN, inf, truncation, zero
length, broken headers). Never a traceback; every row is accounted for; a prior prepared dataset survives."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rel_data_corpora import FAST, FORMATS, build_corpus, fingerprint, index_file, speech

from nbhelpers.data.clean import clean_item
from nbhelpers.data.pipeline import prepare
from nbhelpers.data.sources import Utterance, read_source
from nbhelpers.data.validate import FIXES, DataValidationError, SourceError
from nbhelpers.paths import Workspace

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_CORPORA: dict[str, Path] = {}


def _pristine(fmt: str, tmp_path_factory) -> Path:
    """A 3-row corpus per format, built once; examples work on copies."""
    if fmt not in _CORPORA:
        _CORPORA[fmt] = build_corpus(fmt, tmp_path_factory.mktemp(fmt) / "src", n=3)
    return _CORPORA[fmt]


def _copy(fmt: str, tmp_path_factory) -> Path:
    source = _pristine(fmt, tmp_path_factory)
    folder = source if source.is_dir() else source.parent
    target = tmp_path_factory.mktemp("copy") / "src"
    shutil.copytree(folder, target)
    return target if source.is_dir() else target / source.name


_ops = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("separator"), st.integers(0, 10_000), st.sampled_from([b"\t", b"|", b",", b"\n", b"\r", b'"'])),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(b"")),
    st.tuples(st.just("huge"), st.integers(0, 10_000), st.sampled_from([b"x", "ಕ".encode(), b"\t"])),
    st.tuples(st.just("cut_field"), st.integers(0, 10_000), st.just(b"")),
)
_encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])


def _damage(data: bytes, ops: list, encoding: str) -> bytes:
    if encoding != "utf-8":
        text = data.decode("utf-8")
        data = text.encode(encoding, errors="replace") if encoding != "utf-8-sig" else b"\xef\xbb\xbf" + data
    for kind, pos, arg in ops:
        pos = pos % (len(data) + 1)
        if kind == "flip" and data:
            pos = min(pos, len(data) - 1)
            data = data[:pos] + bytes([data[pos] ^ arg]) + data[pos + 1:]
        elif kind in ("insert", "separator"):
            data = data[:pos] + arg + data[pos:]
        elif kind == "truncate":
            data = data[:pos]
        elif kind == "huge":
            data = data[:pos] + arg * 20_000 + data[pos:]
        elif kind == "cut_field":
            end = data.find(b"\n", pos)
            data = data[:pos] + (data[end:] if end >= 0 else b"")
    return data


def _expected_lines(data: bytes, header: bool) -> set[int] | None:
    """Line numbers that must each come back as one row (None: the file may be refused as a whole)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    return set(lines[1:] if header else lines)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "hf"])
def test_reader_survives_damaged_index(fmt, tmp_path_factory):
    @SETTINGS
    @given(ops=st.lists(_ops, max_size=4), encoding=_encodings)
    def check(ops, encoding):
        source = _copy(fmt, tmp_path_factory)
        index = index_file(fmt, source)
        data = _damage(index.read_bytes(), ops, encoding)
        index.write_bytes(data)
        try:
            utts = read_source(source, "kn", format="json" if fmt == "jsonl" else fmt)
        except (SourceError, FileNotFoundError) as err:
            assert str(index) in str(err) or str(source) in str(err)
            event("file refused as a whole")
            return
        assert all(isinstance(u, Utterance) and u.source for u in utts)
        assert all(u.problem is None or u.problem in FIXES for u in utts)
        if fmt in ("json", "jsonl") and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            return  # a JSON document: rows are list entries, not lines
        expected = _expected_lines(data, header=fmt == "common_voice")
        if expected is not None:
            where = {int(u.source.rsplit(":", 1)[1]) for u in utts if u.source.startswith(f"{index}:")}
            assert where == expected and len(utts) == len(expected), (where, expected)
            event(f"every line is a row; {sum(u.problem is not None for u in utts) > 0 and 'some' or 'no'} problems")

    check()


def test_hf_reader_survives_damaged_values(tmp_path_factory):
    import datasets

    wav = tmp_path_factory.mktemp("hfclip") / "clip.wav"
    sf.write(str(wav), speech("kn", 0), 22050)
    values = st.one_of(st.none(), st.binary(max_size=30), st.text(max_size=30), st.integers(-2**31, 2**31), st.just("ಕ" * 20_000))

    @SETTINGS
    @given(texts=st.lists(values, min_size=1, max_size=3), audio=st.one_of(st.none(), st.binary(max_size=64)))
    def check(texts, audio):
        kinds = {type(t) for t in texts if t is not None}
        if len(kinds) > 1:  # one column holds one type
            texts = [None if t is None else str(t) for t in texts]
        folder = tmp_path_factory.mktemp("hf") / "ds"
        rows = {"text": texts, "audio": [{"bytes": audio, "path": None} if audio is not None else {"bytes": None,
                                          "path": str(wav)}] * len(texts)}
        datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(folder))
        utts = read_source(folder, "kn")
        assert len(utts) == len(texts) and all(u.problem is None or u.problem in FIXES for u in utts)

    check()


def _audio_ops():
    return st.one_of(
        st.tuples(st.just("nonfinite"), st.integers(0, 100_000), st.sampled_from([np.nan, np.inf, -np.inf])),
        st.tuples(st.just("truncate"), st.integers(0, 100_000), st.none()),
        st.tuples(st.just("header"), st.integers(0, 43), st.integers(0, 255)),
        st.tuples(st.just("body"), st.integers(44, 100_000), st.integers(1, 255)),
        st.tuples(st.just("empty"), st.just(0), st.none()),
    )


def test_clean_item_survives_damaged_audio(tmp_path_factory):
    clean = speech("kn", 0, rate=16000)
    root = tmp_path_factory.mktemp("out")

    @SETTINGS
    @given(ops=st.lists(_audio_ops(), min_size=1, max_size=3), subtype=st.sampled_from(["FLOAT", "PCM_16"]))
    def check(ops, subtype):
        samples = clean.copy()
        for kind, pos, arg in ops:
            if kind == "nonfinite" and subtype == "FLOAT":
                samples[pos % len(samples)] = arg
        buf = io.BytesIO()
        sf.write(buf, samples, 16000, format="WAV", subtype=subtype)
        data = buf.getvalue()
        for kind, pos, arg in ops:
            if kind == "truncate":
                data = data[: pos % (len(data) + 1)]
            elif kind == "empty":
                data = b""
            elif kind in ("header", "body") and pos < len(data):
                data = data[:pos] + bytes([data[pos] ^ arg]) + data[pos + 1:]
        path = root / "damaged.wav"
        path.write_bytes(data)
        rec = clean_item(Utterance(id="knm_00001_0001", text="ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುವ ಸಾಧ್ಯತೆ ಇದೆ.",
                                   language="kn", audio_path=str(path), source="test:1"), FAST, root)
        assert rec["status"] in ("kept", "rejected")
        event(rec.get("reason", "kept"))
        if rec["status"] == "rejected":
            assert rec["reason"] in FIXES and rec["reason"] != "processing_error", rec
        else:
            for rel in rec["files"].values():
                out, _ = sf.read(str(root / rel), dtype="float32")
                assert np.isfinite(out).all() and np.abs(out).max() < 0.99

    check()


def test_prior_dataset_survives_any_damaged_rerun(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    first = prepare(_copy("jsonl", tmp_path_factory), "p", "kn", workspace=ws, clean=FAST, workers=1,
                    exports=("ljspeech", "pocket"))
    state = {"prior": fingerprint(first.paths.root)}

    @settings(SETTINGS, max_examples=10)
    @given(ops=st.lists(_ops, max_size=3), encoding=_encodings, drop_audio=st.booleans())
    def check(ops, encoding, drop_audio):
        source = _copy("jsonl", tmp_path_factory)
        if drop_audio:  # one clip cut inside its header
            wav = sorted((source.parent / "wavs").glob("*.wav"))[0]
            wav.write_bytes(wav.read_bytes()[:30])
        source.write_bytes(_damage(source.read_bytes(), ops, encoding))
        try:
            result = prepare(source, "p", "kn", workspace=ws, clean=FAST, workers=1, exports=("ljspeech", "pocket"))
        except (DataValidationError, SourceError):
            assert fingerprint(first.paths.root) == state["prior"]
            event("failed run, prior dataset intact")
            return
        st_ = json.loads(result.paths.stats.read_text(encoding="utf-8"))
        assert st_["read"] == st_["kept"] + st_["rejected"] and st_["kept"] > 0 and result.paths.is_complete
        assert len(result.paths.read_manifest()) == st_["kept"]
        state["prior"] = fingerprint(result.paths.root)
        event(f"completed, {st_['rejected']} rejected")

    check()
