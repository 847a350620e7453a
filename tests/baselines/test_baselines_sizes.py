"""The FastSpeech2 size study (``bench size-study --stage baselines``): stage 08 as a new run per shape on the same
data and steps; each shape's parameters, real-time factor and final mel loss, a refused shape named with its fix,
the plot and the study report's table. Tiny random-weight models on CPU: mechanics only."""

import json

import pytest

from nbhelpers.baselines.config import fastspeech2_shape
from nbhelpers.bench.sizes import SizePoint, parse_points, run_size_study
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records


def test_shape_knobs_override_the_preset_and_heads_must_divide_the_width():
    tiny = load_profile("baselines", "smoke")
    assert fastspeech2_shape(tiny) == {"hidden": 32, "layers": 1, "heads": 1, "ffn": 64}
    wide = load_profile("baselines", "smoke", {"fastspeech2_hidden": 48, "fastspeech2_heads": 3})
    assert fastspeech2_shape(wide) == {"hidden": 48, "layers": 1, "heads": 3, "ffn": 64}
    assert fastspeech2_shape(load_profile("baselines", "kaggle-t4"))["hidden"] == 384  # coqui's FastSpeech2
    with pytest.raises(ValueError, match="width 32 is not divisible by 3 attention heads"):
        fastspeech2_shape(load_profile("baselines", "smoke", {"fastspeech2_heads": 3}))
    assert parse_points("hidden=16;hidden=48,heads=3", "baselines") == [
        SizePoint((("hidden", 16),), "baselines"), SizePoint((("hidden", 48), ("heads", 3)), "baselines")]
    assert parse_points("hidden=16", "baselines")[0].settings == {"fastspeech2_hidden": 16}
    with pytest.raises(ValueError, match="knobs: hidden, layers, heads, ffn"):
        parse_points("text_layers=1", "baselines")


def test_each_shape_is_a_new_run_on_the_same_steps_and_compared(bn_export, isolated_workspace):
    from nbhelpers.bench.study import fastspeech2_size_comparison

    ws = Workspace(isolated_workspace)
    study = run_size_study("smoke", ws, parse_points("hidden=16;hidden=64,layers=2;heads=3", "baselines"), steps=2,
                           stage="baselines")
    rows = {r["point"]: r for r in study["points"]}
    small, large = rows["h16"], rows["h64-l2"]
    assert small["status"] == large["status"] == "done" and small["steps"] == large["steps"] == 2
    assert small["shape"] == {"hidden": 16, "layers": 1, "heads": 1, "ffn": 64}
    assert small["params_total"] < large["params_total"]
    assert all(r["rtf"] > 0 and isinstance(r["final_mel_loss"], float) and r["seconds_per_step"] > 0
               for r in (small, large))
    assert rows["a3"]["status"] == "failed" and "not divisible by 3 attention heads" in rows["a3"]["reason"]
    saved = json.loads((ws.root / "bench" / "sizes-fastspeech2" / "study.json").read_text())
    assert [r["point"] for r in saved["points"]] == ["h16", "h64-l2", "a3"] and saved["stage"] == "baselines"
    assert (ws.root / "bench" / "sizes-fastspeech2" / "sizes.png").read_bytes()[:4] == b"\x89PNG"
    compared, note = fastspeech2_size_comparison(read_records(ws))  # the study report reads the same runs
    assert [r["shape"] for r in compared] == ["h16-l1-a1-f64", "h64-l2-a1-f64"]
    assert note == "Same data and step budget at every shape."
