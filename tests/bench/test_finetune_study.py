"""The fine-tuning study runs stage 02 once per variant on the same data and steps and compares them."""

from __future__ import annotations

import json

import pytest

from nbhelpers.bench.finetune import Variant, parse_variants, run_study
from nbhelpers.data import prepare_smoke_dataset
from nbhelpers.paths import Workspace


def test_variants_are_parsed_and_bad_ones_named():
    assert parse_variants("full, lora:8,4bit:16") == [Variant("full"), Variant("lora", 8), Variant("4bit", 16)]
    assert [v.name for v in parse_variants("lora:4,lora:32")] == ["lora-r4", "lora-r32"]
    for bad, says in (("lora", "give the LoRA rank"), ("full:8", "has no rank"), ("half:8", "mode must be one of"),
                      ("lora:8,lora:8", "twice"), ("", "no variants")):
        with pytest.raises(ValueError, match=says):
            parse_variants(bad)


def test_same_budget_variants_compared_and_qlora_not_simulated_on_cpu(tmp_path):
    ws = Workspace(tmp_path / "ws")
    prepare_smoke_dataset("kn", ws, n_sentences=12)
    study = run_study("smoke", ws, parse_variants("full,lora:4,4bit:8"), steps=2, cuda=False)
    rows = {r["variant"]: r for r in study["variants"]}
    assert rows["4bit-r8"]["status"] == "not_available" and "CUDA" in rows["4bit-r8"]["reason"]
    full, lora = rows["full"], rows["lora-r4"]
    assert full["status"] == lora["status"] == "done" and full["steps"] == lora["steps"] == 2
    assert lora["params_trainable"] < full["params_trainable"] and lora["trainable_pct"] < full["trainable_pct"]
    assert all(isinstance(r["final_loss"], float) and r["seconds_per_step"] > 0 for r in (full, lora))
    saved = json.loads((ws.root / "bench" / "finetune" / "study.json").read_text())
    assert [r["variant"] for r in saved["variants"]] == ["full", "lora-r4", "4bit-r8"]
    assert (ws.root / "bench" / "finetune" / "losses.png").read_bytes()[:4] == b"\x89PNG"
    assert (ws.root / "parler" / "ft-full").is_dir() and (ws.root / "parler" / "ft-lora-r4").is_dir()
    from nbhelpers.bench.study import finetune_comparison
    from nbhelpers.records import read_records

    compared, note = finetune_comparison(read_records(ws))  # the study report reads the same runs
    assert [r["variant"] for r in compared] == ["full", "lora-r4"] and note == "Same step budget in every mode."
