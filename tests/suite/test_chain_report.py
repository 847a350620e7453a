"""The rehearsal's chain report over real stage records: links found, smoke artefacts and missing links caught."""

from nbhelpers import records
from nbhelpers.paths import Workspace
from nbhelpers.records import append_stage_record, read_records
from nbhelpers.suite import chain_markdown, chain_report


def _chain(ws, profile, *, distill_dataset="kn_slr79", teacher=None, data_profile=None):
    data = ws.root / "data"
    append_stage_record("01_data_prep", profile=data_profile or profile, workspace=ws,
                        inputs={"kn_slr79": "openslr:79"},
                        outputs={"kn_slr79": str(data / "kn_slr79"), "bn_slr37": str(data / "bn_slr37")})
    export = ws.root / "parler" / "run" / "export"
    append_stage_record("02_parler_finetune", profile=profile, workspace=ws,
                        inputs={"model": "indic", "dataset": "kn_slr79"}, outputs={"export": str(export)})
    append_stage_record("03_parler_distill", profile=profile, workspace=ws,
                        inputs={"teacher": teacher or str(export), "dataset": distill_dataset},
                        outputs={"export": str(ws.root / "distill" / "export")})
    return chain_report(read_records(ws), profile)


def test_links_are_found_with_their_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_RUN_ID", "run-a")
    monkeypatch.setattr(records, "_RUN_ID", None)  # the id is fixed once per process; this test is a new "run"
    report = _chain(Workspace(tmp_path / "ws"), "kaggle-t4")
    assert report["ok"], report["problems"]
    distill = report["stages"][2]
    assert {(c["stage"], c["run_id"]) for c in distill["consumed"]} == {("02_parler_finetune", "run-a"),
                                                                        ("01_data_prep", "run-a")}
    assert "indic" in report["stages"][1]["external"]
    assert "03_parler_distill" in chain_markdown(report)


def test_smoke_artefact_under_a_real_profile_is_a_failure(tmp_path):
    report = _chain(Workspace(tmp_path / "ws"), "kaggle-t4", distill_dataset="kn_smoke")
    assert not report["ok"]
    assert any("smoke artefact" in p and "kn_smoke" in p for p in report["problems"])


def test_missing_link_and_foreign_profile_are_failures(tmp_path):
    report = _chain(Workspace(tmp_path / "ws"), "kaggle-t4", teacher="ai4bharat/indic-parler-tts")
    assert any("03_parler_distill consumed nothing written by 02_parler_finetune" in p for p in report["problems"])
    mixed = _chain(Workspace(tmp_path / "ws2"), "kaggle-t4", data_profile="smoke")
    assert any("under profile smoke" in p for p in mixed["problems"])


def _benchmark(ws, profile, *, stages=("04", "05", "07", "08")):
    """A 06 record naming, as run_benchmark does, each system's source and the test splits it read."""
    root = ws.root
    made = {"04": ("04_vits_bangla_finetune", {"bundle": str(root / "vits" / "model" / "step-8")}),
            "05": ("05_kokoro_synthesis", {"manifest": str(root / "kokoro" / "out" / "script.json")}),
            "07": ("07_pocket_tts_finetune", {"checkpoint": str(root / "pocket" / "export" / "model.pt")}),
            "08": ("08_baselines", {"bundle": str(root / "baselines" / "model" / "step-9")})}
    models = {}
    for key in stages:
        stage, outputs = made[key]
        append_stage_record(stage, profile=profile, workspace=ws, inputs={"dataset": str(root / "data" / "bn_slr37")},
                            outputs=outputs)
        models[stage] = next(iter(outputs.values()))
    models["03"] = str(root / "distill" / "export")
    append_stage_record("06_benchmark", profile=profile, workspace=ws,
                        inputs={"models": models, "texts": {"kn": "kn_slr79 test split"},
                                "test_splits": {"kn": str(root / "data" / "kn_slr79" / "manifest.jsonl")}})
    return chain_report(read_records(ws), profile)


def test_benchmark_links_to_every_stage_it_measures(tmp_path):
    ws = Workspace(tmp_path / "ws")
    _chain(ws, "kaggle-t4")
    report = _benchmark(ws, "kaggle-t4")
    assert report["ok"], report["problems"]
    bench = report["stages"][-1]
    assert {c["stage"] for c in bench["consumed"]} == {"01_data_prep", "03_parler_distill", "04_vits_bangla_finetune",
                                                       "05_kokoro_synthesis", "07_pocket_tts_finetune", "08_baselines"}


def test_benchmark_without_this_runs_pocket_model_is_a_failure(tmp_path):
    ws = Workspace(tmp_path / "ws")
    _chain(ws, "kaggle-t4")
    report = _benchmark(ws, "kaggle-t4", stages=("04", "05", "08"))
    assert "06_benchmark consumed nothing written by 07_pocket_tts_finetune in this run" in report["problems"]
