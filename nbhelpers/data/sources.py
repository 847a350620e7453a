"""Readers: every supported corpus layout becomes a list of :class:`Utterance` records (id, audio, text,
speaker, language, declared duration, where it came from). A row that cannot even be turned into a record
(no audio file, malformed line) still becomes one, with ``problem`` set, so validation can report it."""

from __future__ import annotations

import codecs
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import AUDIO_EXTENSIONS
from .text import SCRIPTS
from .validate import SourceError

FORMATS = ("ljspeech", "libritts", "openslr", "common_voice", "hf", "folder", "json")
_SPEAKER_ID = re.compile(r"^(?P<speaker>[a-z]{2,3}(?P<gender>[fm])_\d+)_")
_BLANK = " \t\r\n\x0b\x0c"  # what counts as an empty line (ASCII whitespace only)


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


def is_file(path: str | os.PathLike) -> bool:
    """``Path.is_file`` that also says False for names no file can have (too long, NUL bytes, bad types)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError, TypeError):
        return False


def find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/stem.<any audio extension>`` (or ``stem`` itself when it already has an extension)."""
    direct = folder / stem
    if direct.suffix.lower() in AUDIO_EXTENSIONS and is_file(direct):
        return direct
    for ext in AUDIO_EXTENSIONS:
        candidate = folder / f"{stem}{ext}"
        if is_file(candidate):
            return candidate
    return None


def text_lines(path: Path) -> list[tuple[int, str, str | None]]:
    """The non-empty lines of a text file as (1-based line number, text, problem): a line that is not valid
    UTF-8 comes back with its bad bytes escaped and a problem (it becomes a quarantined row, not a crash).
    UTF-8 and UTF-16 byte-order marks are honoured; lines are split at ``\\n`` only, so numbers match an editor's."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            lines = [(line, None) for line in data.decode("utf-16").split("\n")]
        except UnicodeDecodeError as err:
            raise SourceError(f"{path}: starts with a UTF-16 byte-order mark but is not valid UTF-16 ({err.reason} "
                              f"at byte {err.start}); save it as UTF-8") from None
    else:
        lines = []
        for raw in data.removeprefix(codecs.BOM_UTF8).split(b"\n"):
            try:
                lines.append((raw.decode("utf-8"), None))
            except UnicodeDecodeError as err:
                lines.append((raw.decode("utf-8", "backslashreplace"),
                              f"invalid UTF-8 at byte {err.start} of the line: {raw[:80]!r}"))
    return [(n, line.rstrip("\r"), problem) for n, (line, problem) in enumerate(lines, start=1)
            if line.strip(_BLANK) or problem]


def _bad_encoding(utt_id: str, row: int, language: str, where: str, problem: str) -> Utterance:
    return Utterance(id=utt_id.strip() or f"row{row}", text="", language=language, source=where,
                     problem="bad_encoding", detail=problem)


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
    for row, line, problem in text_lines(meta):
        cols = line.split("|")
        where = f"{meta}:{row}"
        if problem:
            out.append(_bad_encoding(cols[0], row, language, where, problem))
            continue
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


LIBRITTS_TEXTS = ("normalized", "original")


def _libritts_genders(root: Path) -> dict[str, str | None]:
    """Reader id -> gender from LibriTTS's ``SPEAKERS.txt`` (``READER | GENDER | SUBSET | NAME``, ``;`` comments)
    in ``root`` or a folder above it (a subset folder such as ``train-clean-100`` is usually passed)."""
    table = next((d / "SPEAKERS.txt" for d in (root, *root.parents[:2]) if (d / "SPEAKERS.txt").is_file()), None)
    if table is None:
        return {}
    out = {}
    for _, line, problem in text_lines(table):
        cols = [c.strip() for c in line.split("|")]
        if not problem and not line.lstrip().startswith(";") and len(cols) >= 2:
            out[cols[0]] = normalize_gender(cols[1])
    return out


def read_libritts(root: str | os.PathLike, language: str, *, text: str = "normalized") -> list[Utterance]:
    """LibriTTS / LibriTTS-R layout: ``<speaker>/<chapter>/<id>.wav`` with ``<speaker>_<chapter>.trans.tsv``
    (``id<TAB>original<TAB>normalized``) per chapter and ``<id>.normalized.txt`` / ``.original.txt`` beside each
    clip. The trans.tsv rows come first; a clip that no trans.tsv lists is read from its sidecar. ``text`` picks
    the normalized (default) or original transcript; the speaker is the ``<speaker>`` folder, its gender from
    ``SPEAKERS.txt`` when present."""
    if text not in LIBRITTS_TEXTS:
        raise ValueError(f"text={text!r}: choose one of {', '.join(LIBRITTS_TEXTS)}")
    root = Path(root)
    tables = sorted(root.rglob("*.trans.tsv"))
    clips = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not tables and not clips:
        raise FileNotFoundError(f"no *.trans.tsv and no audio under {root}: is this a LibriTTS subset folder "
                                f"(<speaker>/<chapter>/<id>.wav)?")
    genders = _libritts_genders(root)
    column = 2 if text == "normalized" else 1
    out, seen = [], set()
    for table in tables:
        chapter = table.parent
        speaker = chapter.parent.name
        for row, line, problem in text_lines(table):
            cols = line.split("\t")
            utt_id, where = cols[0].strip(), f"{table}:{row}"
            if problem:
                out.append(_bad_encoding(utt_id, row, language, where, problem))
                continue
            said = (cols[column] if len(cols) > column else cols[-1]).strip() if len(cols) >= 2 else ""
            if not (utt_id and said):
                out.append(Utterance(id=utt_id or f"row{row}", text="", language=language, source=where,
                                     problem="malformed_row", detail="expected <id>\\t<original text>\\t"
                                                                     "<normalized text>"))
                continue
            seen.add(utt_id)
            utt = Utterance(id=utt_id, text=said, language=language, speaker=speaker, gender=genders.get(speaker),
                            source=where)
            path = find_audio(chapter, utt_id)
            out.append(_missing(utt, chapter, utt_id) if path is None else _with_path(utt, path))
    for clip in clips:
        if clip.stem in seen:
            continue
        speaker = clip.parent.parent.name
        utt = Utterance(id=clip.stem, text="", language=language, speaker=speaker, gender=genders.get(speaker),
                        source=str(clip), audio_path=str(clip))
        side = clip.with_name(f"{clip.stem}.{text}.txt")
        if not side.is_file():
            utt.problem, utt.detail = "empty_text", (f"{clip.name} is in no *.trans.tsv and has no {side.name} "
                                                     f"beside it")
        else:
            lines = text_lines(side)
            bad = next((p for _, _, p in lines if p), None)
            if bad:
                utt.problem, utt.detail = "bad_encoding", f"{side}: {bad}"
            else:
                utt.text = " ".join(line.strip() for _, line, _ in lines)
                utt.source = str(side)
        out.append(utt)
    return out


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
        for row, line, problem in text_lines(index):
            utt_id, _, rest = line.partition("\t")
            utt_id = utt_id.strip()
            text = " ".join(c.strip() for c in rest.split("\t") if c.strip())  # every field after the id
            where = f"{index}:{row}"
            if problem:
                out.append(_bad_encoding(utt_id, row, language, where, problem))
                continue
            if not (text and utt_id):
                out.append(Utterance(id=utt_id or f"row{row}", text="", language=language, source=where,
                                     problem="malformed_row", detail="expected <file id>\\t<text>"))
                continue
            spk, gender = speaker_from_id(utt_id, index.parent.name)
            utt = Utterance(id=utt_id, text=text, language=language, speaker=spk, gender=gender, source=where)
            path = find_audio(wav_dir, utt_id)
            out.append(_missing(utt, wav_dir, utt_id) if path is None else _with_path(utt, path))
    return out


def read_common_voice(root: str | os.PathLike, language: str, *, tsv: str = "validated.tsv") -> list[Utterance]:
    """Common Voice release folder: ``<tsv>`` with ``path``, ``sentence``, ``client_id`` columns, audio in
    ``clips/``; the speaker is the (shortened) client id."""
    root = Path(root)
    table = root / tsv
    if not table.is_file():
        raise FileNotFoundError(f"{table} does not exist: choose one of "
                                f"{', '.join(p.name for p in root.glob('*.tsv')) or 'no .tsv files found'}")
    lines = text_lines(table)
    header = lines[0][1].split("\t") if lines and not lines[0][2] else []
    missing_cols = {"path", "sentence"} - set(header)
    if missing_cols:
        raise SourceError(f"{table}:{lines[0][0] if lines else 1}: missing column(s) {', '.join(sorted(missing_cols))} "
                          f"in the header (or it is not UTF-8 text); a Common Voice TSV starts with a tab-separated "
                          f"header naming path, sentence, client_id")
    need = max(header.index("path"), header.index("sentence")) + 1
    out = []
    for row, line, problem in lines[1:]:
        fields = line.split("\t")
        rec = dict(zip(header, fields, strict=False))
        name = (rec.get("path") or "").strip()
        where = f"{table}:{row}"
        if problem:
            out.append(_bad_encoding(Path(name).stem, row, language, where, problem))
            continue
        if not need <= len(fields) <= len(header):
            out.append(Utterance(id=Path(name).stem or f"row{row}", text="", language=language, source=where,
                                 problem="malformed_row", detail=f"{len(fields)} tab-separated fields, the header "
                                                                 f"has {len(header)}"))
            continue
        client = (rec.get("client_id") or "").strip() or "unknown"
        utt = Utterance(id=Path(name).stem or f"row{row}", text=(rec.get("sentence") or "").strip(),
                        language=language, speaker=f"cv_{client[:12]}", gender=normalize_gender(rec.get("gender")),
                        source=where)
        path = find_audio(root / "clips", name)
        out.append(_missing(utt, root / "clips", name) if path is None else _with_path(utt, path))
    return out


def read_json_manifest(path: str | os.PathLike, language: str) -> list[Utterance]:
    """JSON manifest ``[{"audio_path", "text", "language", "duration"}, ...]`` or JSON lines (one object a line:
    a bad line costs only its row); relative audio paths are relative to the manifest file."""
    path = Path(path)
    lines = text_lines(path)
    if lines and lines[0][1].lstrip(_BLANK).startswith("["):  # one JSON document
        bad = next(((n, problem) for n, _, problem in lines if problem), None)
        if bad:
            raise SourceError(f"{path}:{bad[0]}: {bad[1]}; save the file as UTF-8")
        numbered = dict((n, line) for n, line, _ in lines)
        text = "\n".join(numbered.get(n, "") for n in range(1, max(numbered) + 1))
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise SourceError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); fix it there, or write "
                              f"one JSON object per line (JSON lines) so that a bad line costs only its row") from None
        if not isinstance(items, list):
            raise SourceError(f"{path}: expected a JSON list of objects with audio_path and text")
        return [_manifest_item(item, f"{path}[{i}]", f"row{i}", path, language) for i, item in enumerate(items)]
    out = []
    for row, line, problem in lines:
        where = f"{path}:{row}"
        if problem:
            out.append(_bad_encoding(f"row{row}", row, language, where, problem))
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            out.append(Utterance(id=f"row{row}", text="", language=language, source=where, problem="malformed_row",
                                 detail=f"not valid JSON ({err.msg} at column {err.colno}): {line[:60]!r}"))
            continue
        out.append(_manifest_item(item, where, f"row{row}", path, language))
    return out


def _manifest_item(item: Any, where: str, row_id: str, manifest: Path, language: str) -> Utterance:
    """One manifest entry as an Utterance; a field of the wrong type makes it a malformed_row naming the field."""
    problem = None
    if not isinstance(item, dict):
        problem = f"expected an object with audio_path and text, got {type(item).__name__}"
    elif not isinstance(item.get("audio_path"), str) or not item["audio_path"].strip():
        problem = f"audio_path must be a file path (a string), got {item.get('audio_path')!r}"[:200]
    elif not isinstance(item.get("text"), str):
        problem = f"text must be a string, got {item.get('text')!r}"[:200]
    elif item.get("language") is not None and not (isinstance(item["language"], str) and item["language"] in SCRIPTS):
        problem = f"language must be one of {', '.join(SCRIPTS)}, got {item.get('language')!r}"[:200]
    elif item.get("duration") is not None and not _seconds(item["duration"]):
        problem = f"duration must be a positive number of seconds, got {item['duration']!r}"[:200]
    if problem:
        utt_id = str(item.get("id") or row_id) if isinstance(item, dict) else row_id
        return Utterance(id=utt_id, text="", language=language, source=where, problem="malformed_row",
                         detail=problem)
    audio = Path(item["audio_path"])
    audio = audio if audio.is_absolute() else manifest.parent / audio
    utt_id = str(item.get("id") or audio.stem)
    spk, gender = speaker_from_id(utt_id, str(item.get("speaker") or manifest.stem))
    if item.get("speaker"):
        spk = str(item["speaker"])
    duration = item.get("duration")
    utt = Utterance(id=utt_id, text=item["text"], language=item.get("language") or language, speaker=spk,
                    gender=normalize_gender(item.get("gender")) or gender,
                    duration=None if duration is None else float(duration), source=where)
    if is_file(audio):
        return _with_path(utt, audio)
    utt.problem, utt.detail = "missing_audio", f"{str(audio)[:300]} does not exist"
    return utt


def _seconds(value: Any) -> bool:
    """Whether a declared duration is a usable positive, finite number of seconds (numbers or numeric strings)."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError, OverflowError):
        return False


def read_folder(root: str | os.PathLike, language: str, *, transcripts: str | None = None) -> list[Utterance]:
    """A folder of audio files with either a transcripts file (``name<TAB or |>text`` per line; default
    ``transcripts.txt``/``.tsv``/``.csv``) or a same-named ``.txt``/``.lab`` file beside each clip."""
    root = Path(root)
    table = Path(transcripts) if transcripts else next(
        (root / n for n in ("transcripts.txt", "transcripts.tsv", "transcripts.csv") if (root / n).is_file()), None)
    out = []
    if table is not None:
        table = table if table.is_absolute() else root / table
        for row, line, problem in text_lines(table):
            sep = "\t" if "\t" in line else "|" if "|" in line else ","
            name, _, text = line.partition(sep)
            name = name.strip()
            where = f"{table}:{row}"
            if problem:
                out.append(_bad_encoding(Path(name).stem, row, language, where, problem))
                continue
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
            raw = side.read_bytes().removeprefix(codecs.BOM_UTF8)
            try:
                utt.text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                utt.problem, utt.detail = "bad_encoding", f"{side}: invalid UTF-8 at byte {err.start}: {raw[:80]!r}"
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
    else:
        try:
            ds = _load_local_hf(source, split)
        except Exception as err:  # any damage in someone else's format: one error naming the folder and cause
            raise SourceError(f"{source}: cannot be loaded as a Hugging Face dataset ({type(err).__name__}: "
                              f"{str(err)[:300]}); save it again with save_to_disk, or as parquet") from err
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
        text = rec.get(cols["text"])
        utt = Utterance(id=utt_id, text="", language=language, speaker=spk,
                        gender=normalize_gender(rec.get(cols["gender"])) or gender, source=where)
        try:
            utt.text = text.decode("utf-8") if isinstance(text, bytes) else str(text or "")
        except UnicodeDecodeError as err:
            utt.problem, utt.detail = "bad_encoding", f"text: invalid UTF-8 at byte {err.start}: {text[:80]!r}"
            out.append(utt)
            continue
        audio = rec[cols["audio"]]
        if isinstance(audio, dict) and audio.get("bytes"):
            utt.audio_bytes = audio["bytes"]
        elif isinstance(audio, dict) and audio.get("path") and is_file(audio["path"]):
            utt.audio_path = audio["path"]
        elif isinstance(audio, str) and is_file(audio):
            utt.audio_path = audio
        else:
            utt.problem, utt.detail = "missing_audio", f"row has no audio bytes or readable path ({str(audio)[:80]})"
        out.append(utt)
    return out


def _load_local_hf(source: str, split: str | None) -> Any:
    """A local parquet file, a folder of parquet files or a ``save_to_disk`` folder as one ``datasets.Dataset``."""
    import datasets

    folder = Path(source)
    if str(source).endswith(".parquet") or folder.is_dir() and not any(
            (folder / n).is_file() for n in ("dataset_dict.json", "state.json")) and list(folder.glob("*.parquet")):
        files = [str(source)] if str(source).endswith(".parquet") else sorted(map(str, folder.glob("*.parquet")))
        return datasets.load_dataset("parquet", data_files=files, split="train")
    ds = datasets.load_from_disk(str(source))
    if isinstance(ds, datasets.DatasetDict):
        ds = datasets.concatenate_datasets([ds[k] for k in ([split] if split else list(ds))])
    return ds


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
    if any(p.rglob("*.trans.tsv")) or any(p.rglob("*.normalized.txt")):
        return "libritts"
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
    readers = {"ljspeech": read_ljspeech, "libritts": read_libritts, "openslr": read_openslr, "common_voice": read_common_voice,
               "hf": read_hf, "folder": read_folder, "json": read_json_manifest}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)} or 'auto'")
    src = str(source) if fmt == "hf" else Path(source)
    return readers[fmt](src, language, **options)

