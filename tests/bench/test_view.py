"""What notebook 06 shows: the stage's commands take --profile/--workspace/--set and write systems.json,
view.json (tables, notes, players) and listening/mos.json into the workspace."""

import json

import numpy as np
import soundfile as sf

from nbhelpers.bench.__main__ import main
from nbhelpers.bench.report import COLUMNS, NA_MARK
from nbhelpers.bench.view import result_rows, run_view
from nbhelpers.measure.listening import make_kit


def _record(system, **quality):
    return {"system": system, "backend": "torch", "dtype": "float32", "device": "cpu", "language": "en", "rtf": 0.5,
            "quality": quality, "not_available": {"peak_cuda_mib": "device is not CUDA"},
            "platform": "local", "cpu": "x", "gpu": "none", "python": "3.11", "packages": {}}


def test_result_rows_have_every_report_column_and_mark_missing_numbers():
    (row,) = result_rows([_record("piper-joe", cer=0.1234)])
    assert list(row) == [h for h, _, _ in COLUMNS]
    assert row["RTF"] == "0.500" and row["CER"] == "0.123" and row["peak CUDA MiB"] == NA_MARK


def test_run_view_separates_parler_and_says_why_when_it_is_missing():
    summary = {"run": "r1", "report_md": "/x/report.md", "report_html": "/x/report.html", "chart": "",
               "listening_page": ""}
    gallery = [{"system": "kokoro", "backend": "onnx", "dtype": "int8", "language": "en", "text": "Hi.", "path": "/a.wav"}]
    view = run_view([_record("kokoro")], gallery, {"parler": "no 02 record"}, {"vits-bn [bn]": "load: boom"}, summary)
    assert view["parler"]["rows"] == [] and "no 02 record" in view["parler"]["note"]
    assert view["failures"] == [{"variant": "vits-bn [bn]", "error": "load: boom"}]
    assert view["not_measured"] == [{"not measured": "peak_cuda_mib", "why": "device is not CUDA"}]
    assert view["gallery"][0]["caption"] == "**kokoro** / onnx / int8 [en]: Hi." and view["chart"] is None
    parler = _record("parler-student", cer=0.5)
    parler.update(measured_on="03_parler_distill on the parler stack", quality_source={"cer": "03_parler_distill"})
    view = run_view([parler], [], {}, {}, summary)
    assert len(view["parler"]["rows"]) == 1 and "03_parler_distill" in view["parler"]["provenance"][0][
        "where each number comes from"]


def test_systems_command_writes_what_would_run(isolated_workspace, capsys):
    assert main(["systems", "--profile", "smoke", "--workspace", str(isolated_workspace),
                 "--set", 'systems=["espeak-ng", "kokoro"]']) == 0
    found = json.loads((isolated_workspace / "bench" / "systems.json").read_text(encoding="utf-8"))
    assert {v["system"] for v in found["variants"]} == {"espeak-ng"}
    assert [s["system"] for s in found["skipped"]] == ["kokoro"] and "05_kokoro_synthesis" in found["skipped"][0]["why"]
    assert "CPUExecutionProvider" in found["providers"]


def test_mos_command_reads_returned_ratings(isolated_workspace, tmp_path, capsys):
    bench = isolated_workspace / "bench"
    assert main(["mos", "--profile", "smoke", "--workspace", str(isolated_workspace)]) == 0
    mos = json.loads((bench / "listening" / "mos.json").read_text(encoding="utf-8"))
    assert mos["rows"] == [] and "no returned ratings yet" in mos["note"] and mos["page"] is None
    items = []
    for system in ("alpha", "beta"):
        path = tmp_path / f"{system}.wav"
        sf.write(path, np.zeros(800, np.float32), 16_000)
        items.append({"system": system, "path": path, "text": "t"})
    kit = make_kit(items, bench / "listening", seed=0)
    key = json.loads(kit["key"].read_text())["items"]
    (bench / "listening" / "returned").mkdir()
    (bench / "listening" / "returned" / "ann.csv").write_text(
        "rater,item,rating\n" + "".join(f"ann,{i},{4 if key[i]['system'] == 'alpha' else 2}\n" for i in key))
    assert main(["mos", "--profile", "smoke", "--workspace", str(isolated_workspace)]) == 0
    mos = json.loads((bench / "listening" / "mos.json").read_text(encoding="utf-8"))
    assert {r["system"]: r["MOS"] for r in mos["rows"]} == {"alpha": 4.0, "beta": 2.0}
    assert mos["rows"][0]["95% CI"] == "one rating: no CI" and mos["page"].endswith("index.html")
    assert "alpha" in capsys.readouterr().out
