"""The model-size study distils one student per size from the same teacher, data and steps, and compares them."""

from __future__ import annotations

import json

import pytest

from nbhelpers.bench.sizes import SizePoint, parse_points, run_size_study
from nbhelpers.data import prepare_smoke_dataset
from nbhelpers.paths import Workspace


def test_points_are_parsed_and_bad_ones_named():
    points = parse_points("layers=1; heads=2,layers=2,hidden=32")
    assert points == [SizePoint((("layers", 1),)), SizePoint((("layers", 2), ("hidden", 32), ("heads", 2)))]
    assert [p.name for p in points] == ["l1", "l2-h32-a2"]
    assert points[1].settings == {"student_decoder_layers": 2, "student_decoder_hidden": 32,
                                  "student_decoder_heads": 2}
    for bad, says in (("depth=2", "not KNOB=N"), ("layers=two", "whole number"), ("layers=0", "at least one"),
                      ("layers=1,layers=2", "twice"), ("layers=1;layers=1", "same size twice"), (" ; ", "no size")):
        with pytest.raises(ValueError, match=says):
            parse_points(bad)


def test_each_size_is_distilled_from_the_same_teacher_and_compared(tmp_path):
    ws = Workspace(tmp_path / "ws")
    prepare_smoke_dataset("kn", ws, n_sentences=12)
    study = run_size_study("smoke", ws, parse_points("layers=1;layers=3;layers=2,heads=3"), steps=2, teacher="tiny")
    rows = {r["point"]: r for r in study["points"]}
    small, large = rows["l1"], rows["l3"]
    assert small["status"] == large["status"] == "done" and small["steps"] == large["steps"] == 2
    assert small["params_total"] < large["params_total"] and small["params_total_ratio"] < 1
    assert all(isinstance(r["speedup"], float) and isinstance(r["test_ce"], float) for r in (small, large))
    assert small["teacher_test_ce"] == large["teacher_test_ce"]  # one teacher, one held-out set
    assert rows["l2-a3"]["status"] == "failed" and "decoder_heads" in rows["l2-a3"]["reason"]  # refused size
    saved = json.loads((ws.root / "bench" / "sizes" / "study.json").read_text())
    assert [r["point"] for r in saved["points"]] == ["l1", "l3", "l2-a3"]
    assert (ws.root / "bench" / "sizes" / "sizes.png").read_bytes()[:4] == b"\x89PNG"
    assert (ws.root / "distill" / "size-l1" / "student").is_dir()
    from nbhelpers.bench.study import size_comparison
    from nbhelpers.records import read_records

    compared, note = size_comparison(read_records(ws))  # the study report reads the same runs (the size that
    assert [r["size"] for r in compared] == ["l1", "l3"]  # failed before its run folder existed is in study.json)
    assert [r["params (of teacher)"] for r in compared] == [f"{small['params_total_ratio']:.2f}",
                                                            f"{large['params_total_ratio']:.2f}"]
    assert note == "Same teacher, data and step budget at every size."
