"""What a student sees in the executed smoke notebooks (issue 18): no tracebacks, little stderr, no raw dict dumps,
links and images that exist, audio of at least a second, tables with every column, no metric shown as a number where
its record says it is not available or not meaningful, and every notebook's opening box.

The notebooks are executed once per module by the smoke suite (``python -m nbhelpers.suite run --profile smoke``,
as ``make demo`` does), or read from an existing run folder given in ``TTS_STUDENT_RUN`` (e.g. ``runs/<time>-smoke``
after ``make demo``)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import wave
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nbhelpers import nb as nbmod
from nbhelpers.bench.report import NA_MARK, NOT_MEANINGFUL, quality_verdicts
from nbhelpers.suite import NOTEBOOK_DIR, NUMBERED, run_suite

NOTEBOOKS = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb") if NUMBERED.match(p.name))
MAX_STDERR_LINES = 3
SUITE_TIMEOUT = 2400  # s: the first test waits for the module's smoke suite run (3.5 min idle, ~13 min on a busy machine)
DICT_REPR = re.compile(r"\{'[^']*': [^{}]*\}")
JSON_DUMP = re.compile(r'^\s*\{\s*\n\s*"[^"\n]+":', re.MULTILINE)  # an indented json.dumps printed as is
LINE = 100  # characters: a dict repr longer than this is a raw dump, not a short value
AUDIO_SRC = re.compile(r'src="data:audio/[^;]+;base64,([A-Za-z0-9+/=\s]+)"')
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
IMG_SRC = re.compile(r"<img[^>]+src=['\"]([^'\"]+)['\"]")
NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?(e[-+]?\d+)?$")
SHORT_CLIP = "of audio, nothing to hear"  # what nb.audio writes for a clip under MIN_AUDIO_SECONDS


def executed_run(tmp_root: Path) -> Path:
    """The run folder to check: ``TTS_STUDENT_RUN`` when set, else a fresh smoke suite run under ``tmp_root``."""
    given = os.environ.get("TTS_STUDENT_RUN")
    if given:
        return Path(given).resolve()
    out, results = run_suite("smoke", out=tmp_root / "smoke", keep_going=True)
    failed = [f"{r.notebook}: {r.error}" for r in results if r.status != "ok"]
    assert not failed, "smoke notebooks failed:\n" + "\n".join(failed)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return executed_run(tmp_path_factory.mktemp("student"))


def _load(run_dir: Path, stem: str) -> dict:
    path = run_dir / "executed" / f"{stem}.ipynb"
    assert path.is_file(), f"{path} was not executed"
    return json.loads(path.read_text(encoding="utf-8"))


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _outputs(nb: dict):
    """(cell index, output) for every output of every code cell."""
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            yield i, out


def _shown(out: dict, *kinds: str) -> str:
    """What an output shows, as text: a stream's text, or the given MIME types of its data (default text/html)."""
    if out["output_type"] == "stream":
        return _text(out.get("text", ""))
    return "".join(_text(out.get("data", {}).get(kind, "")) for kind in (kinds or ("text/html",)))


class _Tables(HTMLParser):
    """Every <table> of an HTML output: its header cells and the cell texts of each body row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "caption":
            self._caption = True
        elif tag == "table":
            self.tables.append({"header": [], "rows": [], "caption": ""})
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._caption = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(("th:" if tag == "th" else "") + "".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            if self._row and all(c.startswith("th:") for c in self._row):
                self.tables[-1]["header"] = [c[3:] for c in self._row]
            else:
                self.tables[-1]["rows"].append([c.removeprefix("th:") for c in self._row])
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption and self.tables:
            self.tables[-1]["caption"] += data


def tables_of(html_text: str) -> list[dict]:
    parser = _Tables()
    parser.feed(html_text)
    return parser.tables


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_no_traceback_little_stderr_no_raw_dicts(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    problems = []
    stderr: dict[int, int] = {}
    for i, out in _outputs(nb):
        if out["output_type"] == "error":
            problems.append(f"cell {i}: {out['ename']}: {out['evalue'][:200]}")
            continue
        text = _shown(out, "text/plain", "text/markdown", "text/html")
        if "Traceback (most recent call last)" in text:
            problems.append(f"cell {i}: a traceback in the output: {text[:300]}")
        for match in DICT_REPR.finditer(text):
            if len(match.group(0)) > LINE:
                problems.append(f"cell {i}: a raw dict repr: {match.group(0)[:160]}...")
        if out["output_type"] == "stream" and out["name"] == "stderr":
            stderr[i] = stderr.get(i, 0) + len(_text(out["text"]).strip().splitlines())
    problems += [f"cell {i}: {n} stderr lines (at most {MAX_STDERR_LINES})" for i, n in stderr.items()
                 if n > MAX_STDERR_LINES]
    for i, cell in enumerate(nb["cells"]):
        printed = "".join(_shown(o) for o in cell.get("outputs", []) if o["output_type"] == "stream")
        if JSON_DUMP.search(printed):
            problems.append(f"cell {i}: a JSON object printed as is: {JSON_DUMP.search(printed).group(0)[:120]}")
    assert not problems, f"{stem}:\n" + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_links_images_and_audio_work(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    here = run_dir / "executed"
    problems = []

    def check_target(i: int, target: str) -> None:
        if re.match(r"^(https?:|data:|mailto:|#)", target):
            return
        path = Path(target.split("#")[0])
        if not (path if path.is_absolute() else here / path).exists():
            problems.append(f"cell {i}: link or image {target!r} does not exist")

    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            for target in LINK.findall(_text(cell["source"])):
                check_target(i, target)
    for i, out in _outputs(nb):
        data = out.get("data", {})
        for target in LINK.findall(_shown(out, "text/markdown")):
            check_target(i, target)
        if SHORT_CLIP in _shown(out, "text/markdown", "text/plain"):  # nb.audio's sentence instead of a player
            problems.append(f"cell {i}: a clip under a second, shown as a sentence: {_shown(out, 'text/markdown')[:160]}")
        html_text = _shown(out)
        for target in IMG_SRC.findall(html_text):
            check_target(i, target)
        for png in (data.get("image/png"), data.get("image/jpeg")):
            if png is not None and len(base64.b64decode(_text(png))) < 100:
                problems.append(f"cell {i}: an empty image")
        for encoded in AUDIO_SRC.findall(html_text):
            seconds = wav_seconds(base64.b64decode(encoded))
            if seconds < 1.0:
                problems.append(f"cell {i}: an audio player with {seconds:.2f} s of audio (at least 1 s)")
    assert not problems, f"{stem}:\n" + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_tables_show_every_column(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    problems = []
    for i, out in _outputs(nb):
        for table in tables_of(_shown(out)):
            width = len(table["header"])
            for row in table["rows"]:
                if width and len(row) != width:
                    problems.append(f"cell {i} table {table['caption']!r}: a row of {len(row)} cells under "
                                    f"{width} headers")
                cut = [c for c in row if c.endswith(("...", "…")) or c == "..."]
                if cut:
                    problems.append(f"cell {i} table {table['caption']!r}: truncated cells {cut[:3]}")
            if "..." in table["header"]:
                problems.append(f"cell {i} table {table['caption']!r}: columns left out ('...')")
    assert not problems, f"{stem}:\n" + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_opening_box_is_shown(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    first = _text(nb["cells"][0]["source"])
    box = "\n".join(nbmod.opening_box(stem, nbmod.load_opening()))
    assert box in first, f"{stem}: the first Markdown cell lacks its opening box (python -m nbhelpers.nb render)"


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
def test_benchmark_shows_no_number_that_is_not_available_or_not_meaningful(run_dir: Path) -> None:
    nb = _load(run_dir, "06_benchmark")
    workspace = json.loads((run_dir / "summary.json").read_text())["workspace"]
    record = nbmod.latest_record("06_benchmark", workspace)
    assert record, "no 06_benchmark record"
    records = [json.loads(line) for line in Path(record["outputs"]["records"]).read_text().splitlines() if line]
    records = [r for r in records if r.get("run") == record["metrics"].get("run", records[-1].get("run"))]
    from nbhelpers.bench.report import COLUMNS
    from nbhelpers.bench.view import reference_sources
    from nbhelpers.profiles import load_profile

    params = load_profile("bench", record["profile"])
    asr, refs = params["asr_model"], reference_sources(record["profile"], params["datasets"])

    header_of = {key: header for header, key, _ in COLUMNS}
    shown = [t for _, out in _outputs(nb) for t in tables_of(_shown(out)) if t["caption"].startswith("benchmark ")]
    assert shown, "06 shows no results table"
    table = shown[-1]
    cols = {h: k for k, h in enumerate(table["header"])}
    problems, checked = [], 0
    for r in records:
        key = [r["system"], r["backend"], r["dtype"]]
        row = next((row for row in table["rows"] if row[:3] == key and row[cols["lang"]] == r.get("language")), None)
        assert row is not None, f"no row for {key} [{r.get('language')}]"
        hidden = {f"quality.{k}" if not k.startswith("quality.") and k in (r.get("quality") or {}) else k: why
                  for k, why in (r.get("not_available") or {}).items()}
        hidden.update({f"quality.{k}": why for k, why in quality_verdicts(r, asr, refs).items()})
        for field in hidden:
            name = field.removeprefix("quality.")
            header = header_of.get(f"q:{name}" if field.startswith("quality.") else name)
            if header not in cols:
                continue
            checked += 1
            text = row[cols[header]]
            if NUMBER.match(text) or (text != NA_MARK and not text.startswith(NOT_MEANINGFUL)):
                problems.append(f"{key} [{r.get('language')}] {header} shows {text!r}: {hidden[field]}")
    assert checked, "no not-available metric was checked: the records or the table changed shape"
    assert not problems, "\n".join(problems)


COMPARED = ("02_parler_finetune", "03_parler_distill", "04_vits_bangla_finetune", "07_pocket_tts_finetune",
            "08_baselines")
FORMS = ("02_parler_finetune", "04_vits_bangla_finetune", "07_pocket_tts_finetune", "08_baselines")


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", COMPARED)
def test_a_held_out_recording_plays_beside_the_model_reading_the_same_text(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    for cell in nb["cells"]:
        outs = cell.get("outputs", [])
        shown = [_shown(o, "text/markdown", "text/html") for o in outs]
        at = next((k for k, text in enumerate(shown) if "real recording (held-out test split" in text), None)
        if at is None:
            continue
        players = [k for k, text in enumerate(shown) if k > at and AUDIO_SRC.search(text)]
        assert players and AUDIO_SRC.search(shown[at + 1]), f"{stem}: the held-out recording has no player"
        labels = " ".join(shown[at + 2:])
        assert len(players) >= 2 and re.search(r"\d+ (distillation |training )?steps", labels), (
            f"{stem}: no model output with its state beside the recording: {labels[:300]}")
        return
    pytest.fail(f"{stem}: no held-out test recording shown (nb.speak_test_item / nb.compare)")


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
@pytest.mark.parametrize("stem", FORMS)
def test_try_it_forms_show_their_fields_as_text_under_papermill(run_dir: Path, stem: str) -> None:
    nb = _load(run_dir, stem)
    shown = [_shown(out, "text/markdown", "text/plain") for _, out in _outputs(nb)]
    assert any("Try it (an interactive form" in text for text in shown), f"{stem}: no Try-it fallback (nb.try_it)"
    assert not any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for _, out in _outputs(nb))


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT)
def test_pages_in_headless_chromium_load_every_image_and_audio_and_show_no_error(run_dir: Path) -> None:
    from nbhelpers import screens

    try:
        findings = screens.check_run(run_dir)
    except screens.ChromiumMissing as err:
        pytest.fail(str(err))
    assert sorted(findings) == NOTEBOOKS
    problems = {stem: f.get("problems") for stem, f in findings.items() if f.get("problems") or "audio" not in f}
    assert not problems, f"in headless Chromium: {problems}"
    assert sum(f["audio"] for f in findings.values()) >= 10 and sum(f["images"] for f in findings.values()) >= 5
    small = [stem for stem in NOTEBOOKS if (run_dir / "screens" / f"{stem}.png").stat().st_size < 10_000]
    assert not small, f"first-screen screenshots that look empty: {small}"


def test_a_missing_chromium_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from nbhelpers import screens

    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without chromium
    with pytest.raises(screens.ChromiumMissing, match="make setup.*apt-get install -y chromium"):
        screens.check_run(tmp_path)


def _record(system: str, lang: str, **quality: float) -> dict:
    return {"system": system, "backend": "torch", "dtype": "float32", "device": "cpu", "language": lang,
            "rtf": {"espeak-ng": 0.01, "vits-bn": 0.1}.get(system, 0.5), "quality": quality, "not_available": {}}


def test_whisper_base_cer_on_bangla_and_mcd_against_espeak_are_not_meaningful() -> None:
    bn = _record("vits-bn", "bn", cer=0.93, wer=1.0, mcd_db=11.2, dnsmos_ovrl=2.1)
    verdicts = quality_verdicts(bn, "base-offline", {"bn": "embedded:bn"})
    assert set(verdicts) == {"cer", "wer", "mcd_db"}
    assert "cannot read Bangla" in verdicts["cer"] and "espeak-ng" in verdicts["mcd_db"]
    assert quality_verdicts(bn, "large-v3", {"bn": "openslr:37"}) == {}
    assert quality_verdicts(_record("piper-joe", "en", cer=0.05), "base-offline", {}) == {}


def test_report_cells_and_charts_show_the_reason_not_the_number() -> None:
    from nbhelpers.bench.report import cell, judged, value

    [r] = judged([_record("vits-bn", "bn", cer=0.93, dnsmos_ovrl=2.1)], "base-offline", {"bn": "embedded:bn"})
    assert cell(r, "q:cer", "{:.3f}") == f"{NOT_MEANINGFUL}: Whisper base-offline cannot read Bangla"
    assert value(r, "q:cer") is None and value(r, "q:dnsmos_ovrl") == 2.1


def test_verdict_names_a_system_per_language_and_leaves_random_models_out_on_smoke() -> None:
    from nbhelpers.bench.report import judged, verdict_rows

    records = judged([_record("vits-bn", "bn", cer=0.5, dnsmos_ovrl=3.0),
                      _record("espeak-ng", "bn", cer=0.9, dnsmos_ovrl=2.0),
                      _record("piper-joe", "en", cer=0.05, dnsmos_ovrl=3.1)], "base-offline", {"bn": "embedded:bn"})
    smoke = {row["language"]: row for row in verdict_rows(records, smoke=True)}
    assert smoke["Bangla (bn)"]["use"].startswith("espeak-ng") and "DNSMOS" in smoke["Bangla (bn)"]["why"]
    assert "random" in smoke["Bangla (bn)"]["why"] and smoke["Bangla (bn)"]["fastest"].startswith("espeak-ng")
    assert smoke["English (en)"]["use"].startswith("piper-joe") and "character error rate" in smoke["English (en)"]["why"]
    real = {row["language"]: row for row in verdict_rows(records, smoke=False)}
    assert real["Bangla (bn)"]["use"].startswith("vits-bn")


def test_vits_trains_with_the_suite_seed_not_coquis(tmp_path: Path) -> None:
    from nbhelpers.profiles import load_profile
    from nbhelpers.vits.config import build_config

    config = build_config(load_profile("vits", "smoke"), tmp_path)
    assert config.training_seed == load_profile("suite", "smoke")["seed"] != 54321


def test_known_harmless_lines_are_filtered_and_real_warnings_folded_with_counts(capsys: pytest.CaptureFixture,
                                                                                tmp_path: Path) -> None:
    torchaudio = ("/venv/lib/python3.11/site-packages/torchaudio/_backend/utils.py:213: UserWarning: In 2.9, this "
                  "function's implementation will be changed to use torchaudio.load_with_torchcodec")
    assert nbmod.is_harmless(torchaudio) and nbmod.is_harmless("  warnings.warn(")
    real = "/code/nbhelpers/vits/train.py:10: UserWarning: the learning rate is 0"
    assert not nbmod.is_harmless(real) and not nbmod.is_harmless("RuntimeError: CUDA out of memory")
    nbmod.show_warnings([real, real, "DeprecationWarning: x"], hidden=4, log=tmp_path / "a.log")
    out = capsys.readouterr().out
    assert "warnings: 3 line(s) from the stage, 4 known-harmless hidden" in out and f"{real}  (x2)" in out


def test_tables_transpose_and_never_dump_dicts(capsys: pytest.CaptureFixture) -> None:
    nbmod.table([{"system": "teacher", "cer": 0.5, "cpu": {"rtf": 0.25, "peak": 10}},
                 {"system": "student", "cer": 0.6, "cpu": {"rtf": 0.125, "peak": 8}}], transpose=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "system | teacher | student" and out[2] == "cpu | rtf 0.25; peak 10 | rtf 0.125; peak 8"
    nbmod.table([], title="failures")
    assert capsys.readouterr().out.strip() == "**failures**: none"


def test_test_item_is_the_first_held_out_row_and_a_dataset_without_one_names_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "kn_x"
    (folder / "pocket").mkdir(parents=True)
    rows = [{"id": "a", "text": "train", "audio_path": "audio/a.wav", "split": "train"},
            {"id": "b", "text": "ಹೌದು", "audio_path": "audio/b.wav", "files": {"pocket": "pocket/wavs/b.wav"},
             "split": "test", "text_description": "A calm voice."}]
    (folder / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    item = nbmod.test_item("kn_x", tmp_path, "pocket")
    assert item == {"id": "b", "text": "ಹೌದು", "description": "A calm voice.", "recording": folder / "pocket/wavs/b.wav"}
    assert nbmod.test_item(folder / "pocket" / "train.json", tmp_path)["recording"] == folder / "audio/b.wav"
    (folder / "manifest.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"manifest\.jsonl: no row of the test split.*notebook 01"):
        nbmod.test_item("kn_x", tmp_path)
    with pytest.raises(FileNotFoundError, match="data/kn_y/manifest.jsonl.*notebook 01"):
        nbmod.test_item("kn_y", tmp_path)
