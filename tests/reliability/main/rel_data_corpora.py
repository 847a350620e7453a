"""Helpers of the data-prep reliability tests (a module with a unique name, importable from every test file of
this folder however many test folders one pytest run collects): small real-speech corpora in every reader's
layout, and a fingerprint of a dataset folder to prove it survived a failed re-run."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from nbhelpers.data.clean import CleanConfig

_DATA_CONFTEST = Path(__file__).resolve().parents[2] / "data" / "conftest.py"
_spec = importlib.util.spec_from_file_location("data_test_fixtures", _DATA_CONFTEST)
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
speech, write = _fixtures.speech, _fixtures.write  # espeak-ng speech (cached) and a soundfile writer

KN = ["ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುವ ಸಾಧ್ಯತೆ ಇದೆ.", "ನೀವು ಎಲ್ಲಿಗೆ ಹೋಗುತ್ತಿದ್ದೀರಿ?"]
FAST = CleanConfig(annotate=False, vad="energy", max_duration=8.0)  # the checks without the slow extras
FORMATS = ("ljspeech", "openslr", "common_voice", "folder", "json", "jsonl", "hf")


def build_corpus(fmt: str, root: Path, n: int = 2) -> Path:
    """A corpus of ``n`` good Kannada rows (ids knm_00001_000<i>) in ``fmt``'s layout; returns the source path
    to pass to ``prepare``/``read_source`` (a folder, or the manifest file for json/jsonl)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"knm_00001_{i:04d}" for i in range(n)]
    texts = [KN[i % len(KN)] for i in range(n)]
    audio = [speech("kn", 0 if i % 2 == 0 else 4) for i in range(n)]
    if fmt == "ljspeech":
        for i, a in zip(ids, audio, strict=True):
            write(root / "wavs" / f"{i}.wav", a, 22050)
        (root / "metadata.csv").write_text("".join(f"{i}|{t}|{t}\n" for i, t in zip(ids, texts, strict=True)), encoding="utf-8")
        return root
    if fmt == "openslr":
        for i, a in zip(ids, audio, strict=True):
            write(root / "wavs" / f"{i}.wav", a, 22050)
        (root / "line_index.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in zip(ids, texts, strict=True)), encoding="utf-8")
        return root
    if fmt == "common_voice":
        for i, a in zip(ids, audio, strict=True):
            write(root / "clips" / f"{i}.wav", a, 22050)
        (root / "validated.tsv").write_text(
            "client_id\tpath\tsentence\tup_votes\tgender\n"
            + "".join(f"client{k % 2}abcdef\t{i}.wav\t{t}\t2\tmale\n" for k, (i, t) in enumerate(zip(ids, texts, strict=True))),
            encoding="utf-8")
        return root
    if fmt == "folder":
        for i, a in zip(ids, audio, strict=True):
            write(root / f"{i}.wav", a, 22050)
        (root / "transcripts.txt").write_text("".join(f"{i}.wav\t{t}\n" for i, t in zip(ids, texts, strict=True)),
                                              encoding="utf-8")
        return root
    if fmt in ("json", "jsonl"):
        for i, a in zip(ids, audio, strict=True):
            write(root / "wavs" / f"{i}.wav", a, 22050)
        items = [{"id": i, "audio_path": f"wavs/{i}.wav", "text": t, "language": "kn"} for i, t in zip(ids, texts, strict=True)]
        if fmt == "json":
            (root / "manifest.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
            return root / "manifest.json"
        (root / "manifest.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items),
                                             encoding="utf-8")
        return root / "manifest.jsonl"
    if fmt == "hf":
        import datasets

        for i, a in zip(ids, audio, strict=True):
            write(root / "clips" / f"{i}.wav", a, 22050)
        ds = datasets.Dataset.from_dict({"audio": [str(root / "clips" / f"{i}.wav") for i in ids], "text": texts,
                                         "id": ids, "speaker": ["knm_00001"] * n})
        ds.save_to_disk(str(root / "hf"))
        return root / "hf"
    raise ValueError(fmt)


def index_file(fmt: str, source: Path) -> Path:
    """The text file of a corpus built by :func:`build_corpus` that lists its rows."""
    return {"ljspeech": source / "metadata.csv", "openslr": source / "line_index.tsv",
            "common_voice": source / "validated.tsv", "folder": source / "transcripts.txt"}.get(fmt, source)


def fingerprint(folder: Path) -> dict[str, str]:
    """sha1 of every file below ``folder`` by relative path: equal fingerprints = the folder is untouched."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
