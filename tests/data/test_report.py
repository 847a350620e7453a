"""What notebook 01 shows: the stage writes the sources table and, after preparing, report.json + speakers.png,
and lists them in its stage record; the command line takes --profile/--workspace/--set like every stage."""

import json
import subprocess
import sys

import pytest

from nbhelpers.data import run_profile
from nbhelpers.data.__main__ import main
from nbhelpers.data.report import _spread, selected_datasets
from nbhelpers.paths import PROJECT_ROOT
from nbhelpers.profiles import load_profile
from nbhelpers.records import last_record


def test_selected_datasets_accepts_a_string_and_names_unknown_ones():
    params = load_profile("data", "smoke")
    assert selected_datasets(params, None) == ["kn_smoke", "bn_smoke"]
    assert selected_datasets(params, " bn_smoke, ") == ["bn_smoke"]
    assert selected_datasets(params, "") == ["kn_smoke", "bn_smoke"]
    with pytest.raises(KeyError, match="known: kn_smoke, bn_smoke"):
        selected_datasets(params, "kn_smok")


def test_spread_takes_every_speaker_in_turn():
    rows = [{"id": i, "speaker": s} for i, s in enumerate("aaaabbc")]
    assert [r["speaker"] for r in _spread(rows, 4)] == ["a", "b", "c", "a"]
    assert len(_spread(rows, 50)) == 7


def test_sources_command_writes_the_table_with_overrides(tmp_path):
    ws = tmp_path / "ws"
    assert main(["sources", "--profile", "smoke", "--workspace", str(ws), "--set", "workers=1", "--only",
                 "kn_smoke"]) == 0
    out = json.loads((ws / "data" / "_report" / "sources.json").read_text(encoding="utf-8"))
    assert out["settings"]["workers"] == 1 and out["settings"]["profile"] == "smoke"
    assert out["sources"] == [{"dataset": "kn_smoke", "language": "kn", "source": "embedded:kn", "format": "openslr"}]
    with pytest.raises(KeyError, match="not a parameter"):
        main(["sources", "--profile", "smoke", "--workspace", str(ws), "--set", "wrokers=1"])


def test_prepare_writes_what_the_notebook_shows(tmp_path):
    ws = tmp_path / "ws"
    run_profile("smoke", ws, only="kn_smoke", overrides={"smoke_sentences": 6, "smoke_damaged": True, "workers": 1})
    rec = last_record(ws / "run_log.jsonl", "01_data_prep")
    outputs = rec["outputs"]
    assert outputs["kn_smoke"] == str(ws / "data" / "kn_smoke")
    report = json.loads(open(outputs["report"], encoding="utf-8").read())
    assert open(outputs["speakers_png"], "rb").read(4) == b"\x89PNG"
    assert open(outputs["kn_smoke_histogram"], "rb").read(4) == b"\x89PNG"
    summary = report["summary"][0]
    assert summary["read"] == summary["kept"] + summary["rejected"] == 12 and summary["rejected"] == 6
    manifest = [json.loads(line) for line in (ws / "data" / "kn_smoke" / "manifest.jsonl").read_text().splitlines()]
    assert set(report["kept"][0]) == {"dataset", *manifest[0]}  # every manifest column
    assert {r["speaker"] for r in report["kept"]} == {r["speaker"] for r in manifest}
    assert report["quarantine_total"] == 6 and {q["reason"] for q in report["quarantine"]} >= {"silent", "clipped"}
    assert all({"id", "source", "reason", "detail", "fix"} <= set(q) for q in report["quarantine"])
    for item in report["examples"] + report["rejected_examples"]:
        assert open(item["audio"], "rb").read(4) in (b"RIFF", b"fLaC") and item["caption"]
    assert [q["reason"] for q in report["rejected_examples"]] == ["clipped", "wrong_script"]  # most telling first
    assert len(report["descriptions"]) == 3 and all(d["text_description"] for d in report["descriptions"])
    assert {"manifest.jsonl", "quarantine.jsonl", "parler/", "ljspeech/", "pocket/"} <= {f["path"] for f in report["files"]}


def test_strict_prepare_fails_in_the_child_with_every_problem(tmp_path):
    """What notebook 01 does with strict = True: the child exits non-zero and its output lists the problems."""
    out = subprocess.run([sys.executable, "-m", "nbhelpers.data", "prepare", "--profile", "smoke", "--workspace",
                          str(tmp_path / "ws"), "--only", "kn_smoke", "--set", "strict=true", "--set",
                          "smoke_sentences=3", "--set", "workers=1"],
                         capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert out.returncode != 0
    assert "strict mode" in out.stderr and "clipped x1" in out.stderr
    assert last_record(tmp_path / "ws" / "run_log.jsonl", "01_data_prep")["status"] == "failed"
