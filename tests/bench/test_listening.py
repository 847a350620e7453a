"""Listening-test kit: blind randomised page, CSV validation, MOS with a Student-t 95 % CI."""

import json
import re

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.measure.listening import aggregate, make_kit, mos_ci


def _items(tmp_path):
    items = []
    for system in ("alpha", "beta"):
        for i in range(2):
            path = tmp_path / "src" / f"{system}_{i}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, np.zeros(800, np.float32), 16_000)
            items.append({"system": system, "path": path, "text": f"text {i}"})
    return items


def test_mos_ci_on_known_ratings():
    r = mos_ci([4, 5, 3, 4])
    # mean 4, sample std sqrt(2/3), t(0.975, 3) = 3.18245: half-width 3.18245 * 0.81650 / 2
    assert r["mos"] == 4.0 and r["n"] == 4
    assert r["ci95"] == pytest.approx(1.29924, abs=1e-4)
    assert (r["low"], r["high"]) == pytest.approx((4 - 1.29924, 4 + 1.29924), abs=1e-4)
    single = mos_ci([3])
    assert single["mos"] == 3 and single["ci95"] is None


def test_kit_is_blind_and_randomised(tmp_path):
    kit = make_kit(_items(tmp_path), tmp_path / "kit", seed=1)
    page = kit["page"].read_text()
    assert "alpha" not in page and "beta" not in page and "src/" not in page
    key = json.loads(kit["key"].read_text())["items"]
    assert sorted(key) == ["item_001", "item_002", "item_003", "item_004"]
    assert all((kit["audio"] / f"{i}.wav").is_file() for i in key)
    assert page.count('type="radio"') == 20 and "Download ratings" in page
    order = [key[i]["system"] + key[i]["text"] for i in sorted(key)]
    other = json.loads(make_kit(_items(tmp_path), tmp_path / "kit2", seed=2)["key"].read_text())["items"]
    assert order != [other[i]["system"] + other[i]["text"] for i in sorted(other)]  # another seed, another order


def test_aggregate_fixed_csvs(tmp_path):
    kit = make_kit(_items(tmp_path), tmp_path / "kit", seed=1)
    key = json.loads(kit["key"].read_text())["items"]
    by_system = {s: [i for i in sorted(key) if key[i]["system"] == s] for s in ("alpha", "beta")}
    a1, a2 = by_system["alpha"]
    b1, b2 = by_system["beta"]
    (tmp_path / "r1.csv").write_text(f"rater,item,rating\nann,{a1},4\nann,{a2},5\nann,{b1},2\nann,{b2},1\n")
    (tmp_path / "r2.csv").write_text(f"rater,item,rating\nbob,{a1},3\nbob,{a2},4\nbob,{b1},2\nbob,{b2},2\n"
                                     f"bob,{b2},3\n")  # a re-rating replaces the earlier one
    result = aggregate([tmp_path / "r1.csv", tmp_path / "r2.csv"], kit["key"])
    assert result["alpha"]["mos"] == 4.0 and result["alpha"]["ci95"] == pytest.approx(1.29924, abs=1e-4)
    assert result["beta"]["mos"] == 2.0 and result["beta"]["n"] == 4


def test_bad_csv_rows_name_file_and_line(tmp_path):
    kit = make_kit(_items(tmp_path), tmp_path / "kit", seed=1)
    (tmp_path / "bad.csv").write_text("rater,item,rating\nann,item_001,6\n")
    with pytest.raises(ValueError, match=re.escape("bad.csv:2") + ".*1 to 5"):
        aggregate([tmp_path / "bad.csv"], kit["key"])
    (tmp_path / "alien.csv").write_text("rater,item,rating\nann,item_999,3\n")
    with pytest.raises(ValueError, match="unknown item"):
        aggregate([tmp_path / "alien.csv"], kit["key"])
    (tmp_path / "hdr.csv").write_text("who,clip,score\n")
    with pytest.raises(ValueError, match="header"):
        aggregate([tmp_path / "hdr.csv"], kit["key"])
