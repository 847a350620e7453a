"""A re-run of data prep that fails (empty source, everything rejected, a fault while exporting, a kill between
the two renames of the swap) never destroys the dataset an earlier run prepared."""

import errno
import json
import os
import subprocess
import sys

import pytest
from rel_data_corpora import FAST, KN, build_corpus, fingerprint

from nbhelpers.data import DatasetPaths
from nbhelpers.data.pipeline import prepare
from nbhelpers.data.validate import DataValidationError
from nbhelpers.paths import PROJECT_ROOT, Workspace


@pytest.fixture
def prepared(tmp_path):
    """A complete dataset ``d`` (two kept items, every export) prepared from a JSON manifest."""
    source = build_corpus("json", tmp_path / "src")
    ws = Workspace(tmp_path / "ws")
    result = prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    assert result.stats["kept"] == 2 and result.paths.is_complete
    return source, ws, result.paths


def _intact(paths: DatasetPaths, before: dict[str, str], ws: Workspace) -> None:
    assert fingerprint(paths.root) == before
    assert DatasetPaths.find("d", ws).root == paths.root
    assert len(list((paths.root / "audio" / "44100").glob("*.wav"))) == 2


def test_all_rejected_rerun_is_one_error_and_keeps_the_dataset(prepared):
    source, ws, paths = prepared
    before = fingerprint(paths.root)
    items = json.loads(source.read_text(encoding="utf-8"))
    for item in items:
        item["text"] = "An English sentence in a Kannada corpus."
    source.write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    message = str(info.value)
    assert str(source) in message and "wrong_script x2" in message and "unchanged" in message
    _intact(paths, before, ws)


@pytest.mark.parametrize("content", ["[]", ""])
def test_empty_source_is_one_error_and_keeps_the_dataset(prepared, content):
    source, ws, paths = prepared
    before = fingerprint(paths.root)
    source.write_text(content, encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    assert str(source) in str(info.value) and "no rows" in str(info.value)
    _intact(paths, before, ws)


def test_fault_while_exporting_keeps_the_dataset_and_the_rerun_completes(prepared, monkeypatch):
    source, ws, paths = prepared
    before = fingerprint(paths.root)
    items = json.loads(source.read_text(encoding="utf-8"))
    items[1]["text"] = KN[0]  # a changed item: the new version differs from the old one
    source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    import nbhelpers.data.pipeline as pipeline

    real = pipeline.export_pocket

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "export_pocket", full_disk)
    with pytest.raises(OSError):
        prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    _intact(paths, before, ws)
    monkeypatch.setattr(pipeline, "export_pocket", real)
    again = prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    assert again.reused == 2 and again.processed == 0  # the failed run's items were kept for the rerun
    assert [r["text"] for r in again.kept] == [KN[0], KN[0]] and DatasetPaths.find("d", ws).is_complete


def test_cli_all_rejected_prints_one_line_not_a_traceback(prepared):
    source, ws, paths = prepared
    before = fingerprint(paths.root)
    source.write_text(json.dumps([{"audio_path": "nowhere.wav", "text": KN[0]}]), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "nbhelpers.data", "prepare", "--profile", "smoke", "--workspace",
                           str(ws.root), "--source", str(source), "--name", "d", "--language", "kn"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=300)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "missing_audio x1" in done.stderr, done.stderr
    _intact(paths, before, ws)


def test_kill_between_the_renames_of_the_swap_loses_nothing(prepared):
    """SIGKILL right after the old version was moved aside: the next run puts a complete version back."""
    source, ws, paths = prepared
    items = json.loads(source.read_text(encoding="utf-8"))
    items[0]["text"] = KN[1]
    source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    driver = PROJECT_ROOT / "tests" / "reliability" / "fault_driver.py"
    done = subprocess.run([sys.executable, str(driver), "--at", "os:replace", "--match", r"/data/d$", "--nth", "2",
                           "--fault", "kill", "--", "nbhelpers.data", "prepare", "--profile", "smoke",
                           "--workspace", str(ws.root), "--source", str(source), "--name", "d", "--language", "kn",
                           "--set", "annotate=false", "--set", "vad=energy", "--set", "max_duration=8.0"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=300)
    assert done.returncode == -9, done.stderr
    assert not paths.root.exists()  # killed inside the swap: neither version is at data/d
    again = prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    assert again.processed == 0 and again.reused == 2
    assert DatasetPaths.find("d", ws).is_complete and [r["text"] for r in again.kept] == [KN[1], KN[1]]


def test_exports_of_a_failed_build_are_not_swapped_in_by_the_next_run(prepared, monkeypatch):
    source, ws, paths = prepared
    import nbhelpers.data.pipeline as pipeline

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "export_pocket", full_disk)  # parler/ and ljspeech/ were written, then this
    with pytest.raises(OSError):
        prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1)
    monkeypatch.undo()
    again = prepare(source, "d", "kn", workspace=ws, clean=FAST, workers=1, exports=("pocket",))
    assert again.reused == 2
    marker = json.loads(again.paths.complete_marker.read_text(encoding="utf-8"))
    assert marker["exports"] == ["pocket"] and not again.paths.parler_hf.exists()
    assert not (again.paths.ljspeech / "metadata.csv").exists()
