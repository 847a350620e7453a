"""Discovery of what the suite produced, and one end-to-end benchmark run on the real baselines."""

import json

import numpy as np
import pytest

from nbhelpers.bench import systems
from nbhelpers.bench.run import run_benchmark
from nbhelpers.measure.harness import read_records
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import append_stage_record
from nbhelpers.records import read_records as read_run_log


def test_discovery_is_tolerant_and_says_why(isolated_workspace):
    ws = Workspace()
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws,
                        outputs={"bundle": str(ws.root / "vits" / "model" / "step-000000001")})
    append_stage_record("02_parler_finetune", profile="smoke", workspace=ws)
    append_stage_record("07_pocket_tts_finetune", profile="smoke", workspace=ws,
                        outputs={"config": "/gone/model.yaml", "checkpoint": "/gone/model.pt"})
    variants, skipped = systems.discover(ws, load_profile("bench", "smoke"))
    names = {v.system for v in variants}
    assert {"espeak-ng", "piper-joe"} <= names and "vits-bn" not in names
    assert "bundle" in skipped["vits-bn"] and "names no samples.jsonl" in skipped["parler"] and "kokoro" in skipped
    assert "/gone/model.pt" in skipped["pocket"]
    piper = {v.backend for v in variants if v.system == "piper-joe"}
    assert "onnxruntime[CPU]" in piper and "onnxruntime[CPU]-int8-static" in piper
    with pytest.raises(ValueError, match="unknown systems"):
        systems.discover(ws, load_profile("bench", "smoke"), ["nope"])


def test_vits_bundle_found_when_the_record_points_elsewhere(isolated_workspace):
    from nbhelpers.checkpoint import save_checkpoint

    ws = Workspace()
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws,
                        outputs={"bundle": "/kaggle/working/vits/model/step-000000009"})  # another machine's path

    def write(folder):
        for name in ("model.pth", "config.json", "model.onnx"):
            (folder / name).write_bytes(b"x")

    bundle = save_checkpoint(ws.stage_dir("vits", "model"), 3, write, meta={})
    variants, _ = systems.discover(ws, load_profile("bench", "smoke"), ["vits-bn"])
    assert {v.source for v in variants} == {str(bundle)}
    assert {"torch", "torch-int8-dynamic", "onnxruntime[CPU]", "onnxruntime[CPU]-int8-dynamic"} <= {v.backend for v in variants}
    (bundle / "model.int8.onnx").write_bytes(b"x")  # stage 04's calibrated int8 model replaces dynamic int8
    backends = {v.backend for v in systems.discover(ws, load_profile("bench", "smoke"), ["vits-bn"])[0]}
    assert "onnxruntime[CPU]-int8-static" in backends and "onnxruntime[CPU]-int8-dynamic" not in backends


def test_end_to_end_on_baselines(isolated_workspace, monkeypatch):
    def broken(workspace, params, records):
        def load():
            raise RuntimeError("weights are corrupt")
        return [systems.Variant("broken", "torch", "float32", "cpu", ("en",), load, "test")], None

    monkeypatch.setitem(systems.REGISTRY, "broken", broken)
    summary = run_benchmark("smoke", systems=["espeak-ng", "piper-joe", "broken"],
                            overrides={"languages": ["en"], "int8": False})
    assert summary["records"] == 2 and "weights are corrupt" in json.dumps(summary["failures"])
    records = read_records(summary["records_path"], strict=True)
    by = {r["system"]: r for r in records}
    assert by["piper-joe"]["quality"]["cer"] < 0.3 and by["piper-joe"]["params"] > 1e6
    assert by["espeak-ng"]["quality"]["dnsmos_ovrl"] > 1.0
    assert by["piper-joe"]["energy_j_per_audio_s"] is None and by["piper-joe"]["not_available"]["energy_j_per_audio_s"]
    assert by["piper-joe"]["quality"]["pesq_wb"] is None  # free synthesis has no time-aligned reference
    md = open(summary["report_md"]).read()
    assert "piper-joe" in md and "espeak-ng" in md and "weights are corrupt" in md
    html = open(summary["report_html"]).read()
    assert html.count("<audio") == 2 and "charts.png" in html
    for g in summary["gallery"]:
        import soundfile as sf
        audio, _ = sf.read(g["path"])
        assert np.abs(audio).max() > 0.01
    assert "item_001" in open(summary["listening_page"]).read()
    stage = read_run_log(Workspace(), "06_benchmark")[-1]
    assert stage["status"] == "done" and stage["metrics"]["records"] == 2
    view = json.loads(open(stage["outputs"]["view"], encoding="utf-8").read())  # what notebook 06 shows
    assert {r["system"] for r in view["results"]} == {"espeak-ng", "piper-joe"} and view["run"] == summary["run"]
    assert "weights are corrupt" in view["failures"][0]["error"] and view["parler"]["rows"] == []
    assert [g["path"] for g in view["gallery"]] == [g["path"] for g in summary["gallery"]]
    assert open(stage["outputs"]["charts"], "rb").read(4) == b"\x89PNG"
    from nbhelpers.bench.view import judge_run
    from nbhelpers.profiles import load_profile

    judged = judge_run(load_profile("bench", "smoke", {"languages": ["en"], "int8": False}), summary)
    study = open(judged["study"]["markdown"], encoding="utf-8").read()  # the study report, from the same records
    assert "| cpu | English (en) | espeak-ng" in study or "| cpu | English (en) | piper-joe" in study
    assert "broken" not in study or "weights are corrupt" in study


def test_piper_int8_variant_runs_the_calibrated_int8_model(isolated_workspace, tmp_path, monkeypatch):
    """Piper's int8 row is stage 04's static recipe (integer convolutions), cached once, and it speaks."""
    import onnx

    from nbhelpers.bench.run import TextSet, measure_variant

    monkeypatch.setenv("TTS_BENCH_CACHE", str(tmp_path / "cache"))
    params = {**load_profile("bench", "smoke"), "languages": ["en"], "asr": True, "dnsmos": False}
    variants, _ = systems.discover(Workspace(), params, ["piper-joe"])
    (int8,) = [v for v in variants if v.dtype == "int8"]
    text = "The weather is lovely today."
    _, failures = measure_variant(int8, {"en": TextSet("en", [text], source="test")}, params, tmp_path, "r1")
    assert failures == {}
    (model,) = (tmp_path / "cache").glob("*.int8-static.onnx")
    ops = {n.op_type for n in onnx.load(str(model)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    rec = read_records(tmp_path / "records.jsonl", strict=True)[0]
    assert (rec["system"], rec["backend"], rec["dtype"]) == ("piper-joe", "onnxruntime[CPU]-int8-static", "int8")
    assert rec["quality"]["cer"] < 0.3  # Whisper base still understands the int8 voice
