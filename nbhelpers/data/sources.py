"""Readers: every supported corpus layout becomes a list of :class:`Utterance` records (id, audio, text,
speaker, language, declared duration, where it came from). A row that cannot even be turned into a record
(no audio file, malformed line) still becomes one, with ``problem`` set, so validation can report it."""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import AUDIO_EXTENSIONS

FORMATS = ("ljspeech", "openslr", "common_voice", "hf", "folder", "json")
_SPEAKER_ID = re.compile(r"^(?P<speaker>[a-z]{2,3}(?P<gender>[fm])_\d+)_")


@dataclass
class Utterance:
    id: str
    text: str
    language: str
    speaker: str = "speaker0"
    audio_path: str | None = None
    audio_bytes: bytes | None = None
    duration: float | None = None  # declared by the source, checked against the audio
    gender: str | None = None  # "female" / "male" when the source says so
    source: str = ""  # file and row, for error messages
    problem: str | None = None  # a reason found while reading (missing_audio, malformed_row, ...)
    detail: str = ""


def normalize_gender(value: Any) -> str | None:
    """Map the gender spellings corpora use (F, m, Female, female_feminine...) to female/male, else None."""
    text = str(value or "").strip().lower()
    if text in ("f", "female", "woman", "female_feminine"):
        return "female"
    if text in ("m", "male", "man", "male_masculine"):
        return "male"
    return None


def speaker_from_id(utt_id: str, default: str) -> tuple[str, str | None]:
    """Speaker and gender from an OpenSLR-style id (``knf_00118_0001`` -> ``knf_00118``, female)."""
    m = _SPEAKER_ID.match(utt_id)
    if not m:
        return default, None
    return m.group("speaker"), {"f": "female", "m": "male"}[m.group("gender")]


def find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/stem.<any audio extension>`` (or ``stem`` itself when it already has an extension)."""
    direct = folder / stem
    if direct.suffix.lower() in AUDIO_EXTENSIONS and direct.is_file():
        return direct
    for ext in AUDIO_EXTENSIONS:
        candidate = folder / f"{stem}{ext}"
        if candidate.is_file():
            return candidate
    return None


def _missing(utt: Utterance, folder: Path, stem: str) -> Utterance:
    utt.problem = "missing_audio"
    utt.detail = f"no audio file {stem}{{{','.join(AUDIO_EXTENSIONS)}}} in {folder}"
    return utt


def read_ljspeech(root: str | os.PathLike, language: str, *, metadata: str = "metadata.csv",
                  speaker: str | None = None) -> list[Utterance]:
    """LJSpeech layout: ``metadata.csv`` with ``id|text[|normalized]`` and ``wavs/<id>.wav``.

    The raw text column is used (this pipeline normalises it); the speaker comes from an OpenSLR-style id
    when there is one, else ``speaker`` (default: the folder name).
    """
    root = Path(root)
    meta = root / metadata
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} does not exist: an LJSpeech folder needs {metadata} (id|text|normalized)")
    default = speaker or root.name
    out = []
    for row, line in enumerate(meta.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("|")
        where = f"{meta}:{row}"
        if len(cols) < 2:
            out.append(Utterance(id=cols[0].strip() or f"row{row}", text="", language=language, source=where,
                                 problem="malformed_row", detail="expected id|text|normalized"))
            continue
        utt_id = cols[0].strip()
        spk, gender = speaker_from_id(utt_id, default)
        utt = Utterance(id=utt_id, text=cols[1].strip(), language=language, speaker=spk, gender=gender, source=where)
        path = find_audio(root / "wavs", utt_id)
        out.append(_missing(utt, root / "wavs", utt_id) if path is None else _with_path(utt, path))
    return out


def _with_path(utt: Utterance, path: Path) -> Utterance:
    utt.audio_path = str(path)
    return utt


def read_openslr(root: str | os.PathLike, language: str) -> list[Utterance]:
    """OpenSLR TTS corpora (SLR79 Kannada, SLR37 Bangla, ...): every ``line_index.tsv`` under ``root`` with
    ``<file id>\\t<text>`` lines and audio in ``wavs/`` beside it; the speaker comes from the file id."""
    root = Path(root)
    indexes = sorted(root.rglob("line_index.tsv"))
    if not indexes:
        raise FileNotFoundError(f"no line_index.tsv under {root}: is this an OpenSLR corpus folder (unzipped)?")
    out = []
    for index in indexes:
        wav_dir = index.parent / "wavs" if (index.parent / "wavs").is_dir() else index.parent
        for row, line in enumerate(index.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            cols = [c.strip() for c in line.split("\t")]
            texts = [c for c in cols[1:] if c]
            where = f"{index}:{row}"
            if not texts:
                out.append(Utterance(id=cols[0] or f"row{row}", text="", language=language, source=where,
                                     problem="malformed_row", detail="expected <file id>\\t<text>"))
                continue
            spk, gender = speaker_from_id(cols[0], index.parent.name)
            utt = Utterance(id=cols[0], text=texts[-1], language=language, speaker=spk, gender=gender, source=where)
            path = find_audio(wav_dir, cols[0])
            out.append(_missing(utt, wav_dir, cols[0]) if path is None else _with_path(utt, path))
    return out


def read_common_voice(root: str | os.PathLike, language: str, *, tsv: str = "validated.tsv") -> list[Utterance]:
    """Common Voice release folder: ``<tsv>`` with ``path``, ``sentence``, ``client_id`` columns, audio in
    ``clips/``; the speaker is the (shortened) client id."""
    root = Path(root)
    table = root / tsv
    if not table.is_file():
        raise FileNotFoundError(f"{table} does not exist: choose one of "
                                f"{', '.join(p.name for p in root.glob('*.tsv')) or 'no .tsv files found'}")
    out = []
    with table.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing_cols = {"path", "sentence"} - set(reader.fieldnames or [])
        if missing_cols:
            raise ValueError(f"{table}: missing column(s) {', '.join(sorted(missing_cols))}; a Common Voice TSV "
                             f"has path, sentence, client_id")
        for row, rec in enumerate(reader, start=2):
            name = (rec.get("path") or "").strip()
            utt_id = Path(name).stem or f"row{row}"
            client = (rec.get("client_id") or "unknown").strip()
            gender = normalize_gender(rec.get("gender"))
            utt = Utterance(id=utt_id, text=(rec.get("sentence") or "").strip(), language=language,
                            speaker=f"cv_{client[:12]}", gender=gender, source=f"{table}:{row}")
            path = find_audio(root / "clips", name)
            out.append(_missing(utt, root / "clips", name) if path is None else _with_path(utt, path))
    return out


def read_json_manifest(path: str | os.PathLike, language: str) -> list[Utterance]:
    """JSON manifest ``[{"audio_path", "text", "language", "duration"}, ...]`` (also JSON lines); relative
    audio paths are relative to the manifest file."""
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    try:
        items = json.loads(raw)
    except json.JSONDecodeError:
        items = [json.loads(line) for line in raw.splitlines() if line.strip()]
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of objects with audio_path and text")
    out = []
    for row, item in enumerate(items):
        where = f"{path}[{row}]"
        if not isinstance(item, dict) or "audio_path" not in item or "text" not in item:
            out.append(Utterance(id=f"row{row}", text="", language=language, source=where, problem="malformed_row",
                                 detail="each entry needs audio_path and text"))
            continue
        audio = Path(item["audio_path"])
        audio = audio if audio.is_absolute() else path.parent / audio
        utt_id = str(item.get("id") or audio.stem)
        spk, gender = speaker_from_id(utt_id, str(item.get("speaker") or path.stem))
        if item.get("speaker"):
            spk = str(item["speaker"])
        utt = Utterance(id=utt_id, text=str(item["text"]), language=item.get("language") or language, speaker=spk,
                        gender=normalize_gender(item.get("gender")) or gender, duration=item.get("duration"),
                        source=where)
        if audio.is_file():
            out.append(_with_path(utt, audio))
        else:
            utt.problem, utt.detail = "missing_audio", f"{audio} does not exist"
            out.append(utt)
    return out


def read_folder(root: str | os.PathLike, language: str, *, transcripts: str | None = None) -> list[Utterance]:
    """A folder of audio files with either a transcripts file (``name<TAB or |>text`` per line; default
    ``transcripts.txt``/``.tsv``/``.csv``) or a same-named ``.txt``/``.lab`` file beside each clip."""
    root = Path(root)
    table = Path(transcripts) if transcripts else next(
        (root / n for n in ("transcripts.txt", "transcripts.tsv", "transcripts.csv") if (root / n).is_file()), None)
    out = []
    if table is not None:
        table = table if table.is_absolute() else root / table
        for row, line in enumerate(table.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            sep = "\t" if "\t" in line else "|" if "|" in line else ","
            name, _, text = line.partition(sep)
            name = name.strip()
            where = f"{table}:{row}"
            if not text.strip():
                out.append(Utterance(id=Path(name).stem or f"row{row}", text="", language=language, source=where,
                                     problem="empty_text", detail="no transcript after the file name"))
                continue
            stem = Path(name).stem
            spk, gender = speaker_from_id(stem, root.name)
            utt = Utterance(id=stem, text=text.strip(), language=language, speaker=spk, gender=gender, source=where)
            path = find_audio(root, name) or find_audio(root, stem)
            out.append(_missing(utt, root, name) if path is None else _with_path(utt, path))
        return out
    clips = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not clips:
        raise FileNotFoundError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) and no transcripts file")
    for clip in clips:
        side = next((clip.with_suffix(e) for e in (".txt", ".lab") if clip.with_suffix(e).is_file()), None)
        spk, gender = speaker_from_id(clip.stem, clip.parent.name)
        utt = Utterance(id=clip.stem, text="", language=language, speaker=spk, gender=gender, source=str(clip),
                        audio_path=str(clip))
        if side is None:
            utt.problem, utt.detail = "empty_text", f"no {clip.stem}.txt or .lab transcript beside the clip"
        else:
            utt.text = side.read_text(encoding="utf-8-sig").strip()
        out.append(utt)
    return out


def read_hf(source: str, language: str, *, columns: dict[str, str] | None = None, split: str | None = None,
            config: str | None = None, allow_hub: bool = False) -> list[Utterance]:
    """A Hugging Face dataset: ``hf:<hub id>`` (only where ``allow_hub``: the GPU profiles), a folder saved
    with ``save_to_disk``, or parquet file(s). ``columns`` maps our names (audio, text, speaker, id, gender)
    to the dataset's column names."""
    import datasets

    cols = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "id", "gender": "gender",
            **(columns or {})}
    if source.startswith("hf:"):
        if not allow_hub:
            raise RuntimeError(f"{source}: hub downloads are disabled in this profile (no internet here); use a "
                               f"local folder, parquet files or a profile with allow_hub = true")
        ds = datasets.load_dataset(source[3:], config, split=split or "train")
    elif str(source).endswith(".parquet") or Path(source).is_dir() and not any(
            (Path(source) / n).is_file() for n in ("dataset_dict.json", "state.json")) and list(
            Path(source).glob("*.parquet")):
        files = [str(source)] if str(source).endswith(".parquet") else sorted(map(str, Path(source).glob("*.parquet")))
        ds = datasets.load_dataset("parquet", data_files=files, split="train")
    else:
        ds = datasets.load_from_disk(str(source))
        if isinstance(ds, datasets.DatasetDict):
            ds = datasets.concatenate_datasets([ds[k] for k in ([split] if split else list(ds))])
    missing = [cols[k] for k in ("audio", "text") if cols[k] not in ds.column_names]
    if missing:
        raise ValueError(f"{source}: column(s) {missing} not found; columns are {ds.column_names}. Pass a mapping, "
                         f"e.g. columns={{'audio': 'speech', 'text': 'sentence'}}")
    if isinstance(ds.features[cols["audio"]], datasets.Audio):
        ds = ds.cast_column(cols["audio"], datasets.Audio(decode=False))
    out = []
    for row, rec in enumerate(ds):
        where = f"{source}[{row}]"
        utt_id = str(rec.get(cols["id"]) or f"{Path(str(source)).name.replace(':', '_')}_{row:06d}")
        spk_default = str(rec.get(cols["speaker"]) or "speaker0")
        spk, gender = speaker_from_id(utt_id, spk_default)
        utt = Utterance(id=utt_id, text=str(rec.get(cols["text"]) or ""), language=language, speaker=spk,
                        gender=normalize_gender(rec.get(cols["gender"])) or gender, source=where)
        audio = rec[cols["audio"]]
        if isinstance(audio, dict) and audio.get("bytes"):
            utt.audio_bytes = audio["bytes"]
        elif isinstance(audio, dict) and audio.get("path") and Path(audio["path"]).is_file():
            utt.audio_path = audio["path"]
        elif isinstance(audio, str) and Path(audio).is_file():
            utt.audio_path = audio
        else:
            utt.problem, utt.detail = "missing_audio", f"row has no audio bytes or readable path ({str(audio)[:80]})"
        out.append(utt)
    return out


def detect_format(path: str | os.PathLike) -> str:
    """Guess the layout of a source path (one of FORMATS)."""
    p = Path(path)
    if str(path).startswith("hf:") or str(path).endswith(".parquet"):
        return "hf"
    if p.is_file():
        if p.suffix in (".json", ".jsonl"):
            return "json"
        if p.name == "metadata.csv":
            return "ljspeech"
        raise ValueError(f"{p}: cannot tell the format of this file; pass format=...")
    if not p.is_dir():
        raise FileNotFoundError(f"source {p} does not exist")
    if (p / "metadata.csv").is_file() and (p / "wavs").is_dir():
        return "ljspeech"
    if any(p.rglob("line_index.tsv")):
        return "openslr"
    if (p / "clips").is_dir() and list(p.glob("*.tsv")):
        return "common_voice"
    if any((p / n).is_file() for n in ("dataset_dict.json", "state.json")) or list(p.glob("*.parquet")):
        return "hf"
    return "folder"


def read_source(source: str | os.PathLike, language: str, *, format: str = "auto", **options: Any) -> list[Utterance]:
    """Read any supported source; ``options`` go to the reader (e.g. ``columns``, ``tsv``, ``metadata``)."""
    fmt = detect_format(source) if format == "auto" else format
    readers = {"ljspeech": read_ljspeech, "openslr": read_openslr, "common_voice": read_common_voice,
               "hf": read_hf, "folder": read_folder, "json": read_json_manifest}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)} or 'auto'")
    src = str(source) if fmt == "hf" else Path(source)
    return readers[fmt](src, language, **options)

