"""The rehearsal's Kaggle step: the real kernels.toml and notebooks, pushed and chained by the real CLI against the
fake Kaggle API, with each session's output a kaggle-t4 run log; a stage whose record is missing breaks it."""

import json

from nbhelpers.paths import Workspace
from nbhelpers.records import append_stage_record
from nbhelpers.rehearsal.kaggle import kaggle_markdown, rehearse_kaggle

STAGES = ("00_environment", "01_data_prep", "02_parler_finetune", "03_parler_distill", "04_vits_bangla_finetune",
          "05_kokoro_synthesis", "07_pocket_tts_finetune", "08_baselines", "06_benchmark")


def _workspace(root, stages):
    ws = Workspace(root)
    for stage in stages:
        append_stage_record(stage, profile="kaggle-t4", workspace=ws, outputs={"dir": str(ws.root / stage)})
    return ws.root


def test_real_profile_kernels_push_and_chain(tmp_path):
    report = rehearse_kaggle("kaggle-t4", _workspace(tmp_path / "ws", STAGES), tmp_path / "out")
    assert report["ok"], report["problems"]
    kernels = report["kernels"]
    assert set(kernels) == set(STAGES)
    assert {k["profile"] for k in kernels.values()} == {'"kaggle-t4"'}
    assert kernels["02_parler_finetune"]["gpu"] and not kernels["01_data_prep"]["gpu"]
    bench = kernels["06_benchmark"]["kernels"]
    assert {ref.split("/")[1] for ref in bench} >= {"tts-suite-07-pocket-tts-finetune", "tts-suite-02-parler-finetune",
                                                    "tts-suite-08-baselines"}
    assert all("rehearsal/tts-suite-code" in k["datasets"] for k in kernels.values())
    saved = json.loads((tmp_path / "out" / "kaggle.json").read_text())
    assert saved["ok"] and "| 06_benchmark | 1 |" in kaggle_markdown(saved)


def test_a_stage_without_its_record_breaks_the_chain(tmp_path):
    stages = [s for s in STAGES if s != "04_vits_bangla_finetune"]
    report = rehearse_kaggle("kaggle-t4", _workspace(tmp_path / "ws", stages), tmp_path / "out")
    assert not report["ok"]
    assert any("04_vits_bangla_finetune" in p or "04-vits" in p for p in report["problems"])
