"""A workspace copied or moved keeps working, and stage 06 never follows a record into another workspace."""

import json
import shutil

from nbhelpers import nb
from nbhelpers.bench.systems import discover
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import append_stage_record, read_records


def _vits_bundle(ws: Workspace):
    bundle = ws.root / "vits" / "model" / "step-00000008"
    bundle.mkdir(parents=True)
    for name in ("model.pth", "config.json"):
        (bundle / name).write_bytes(b"stand-in")
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws,
                        inputs={"dataset": str(ws.root / "data" / "bn_smoke")}, outputs={"bundle": bundle})
    return bundle


def test_record_paths_are_stored_relative_and_read_under_the_current_workspace(tmp_path):
    old = Workspace(tmp_path / "old")
    bundle = _vits_bundle(old)
    raw = json.loads(old.run_log.read_text(encoding="utf-8").splitlines()[-1])
    assert raw["outputs"]["bundle"] == "./vits/model/step-00000008"
    assert raw["inputs"]["dataset"] == "./data/bn_smoke"
    assert read_records(old)[-1]["outputs"]["bundle"] == str(bundle)

    moved = tmp_path / "moved"
    shutil.move(old.root, moved)
    rec = read_records(Workspace(moved))[-1]
    assert rec["outputs"]["bundle"] == str(moved / "vits" / "model" / "step-00000008")
    assert nb.latest_record("04_vits_bangla_finetune", moved)["outputs"]["bundle"] == rec["outputs"]["bundle"]


def test_a_copied_workspace_benchmarks_its_own_models(tmp_path):
    a = Workspace(tmp_path / "a")
    _vits_bundle(a)
    b_root = tmp_path / "b"
    shutil.copytree(a.root, b_root)
    params = load_profile("bench", "smoke")
    variants, _ = discover(Workspace(b_root), params, ["vits-bn"])
    assert variants and {v.source for v in variants} == {str(b_root / "vits" / "model" / "step-00000008")}


def test_a_record_naming_another_workspace_is_not_followed(tmp_path):
    """A run log written before paths were stored relative (absolute paths) and copied elsewhere."""
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    bundle = _vits_bundle(a)
    foreign = json.loads(a.run_log.read_text(encoding="utf-8").splitlines()[-1])
    foreign["outputs"]["bundle"] = str(bundle)  # the old, absolute form
    b.run_log.write_text(json.dumps(foreign) + "\n", encoding="utf-8")
    params = load_profile("bench", "smoke")
    variants, skipped = discover(b, params, ["vits-bn"])
    assert variants == [] and "no 04_vits_bangla_finetune bundle" in skipped["vits-bn"]

    checkpoint = a.root / "pocket" / "export" / "model.pt"
    checkpoint.parent.mkdir(parents=True)
    files = {k: checkpoint.with_name(n) for k, n in (("config", "model.yaml"), ("checkpoint", "model.pt"),
                                                       ("tokenizer", "tokenizer.model"))}
    for f in files.values():
        f.write_bytes(b"x")
    pocket = {"stage": "07_pocket_tts_finetune", "profile": "smoke", "status": "done",
              "inputs": {"voice_prompt": str(checkpoint)}, "outputs": {k: str(v) for k, v in files.items()}}
    with b.run_log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(pocket) + "\n")
    variants, skipped = discover(b, params, ["pocket"])
    assert variants == [] and "outside this workspace" in skipped["pocket"]
