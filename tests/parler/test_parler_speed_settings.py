"""`attention` (sdpa | eager) and `compile` are training settings: the decoder is loaded with the asked attention,
torch.compile runs the training forward to the same losses as eager, and where compile cannot apply the run trains
eager and records why."""

from __future__ import annotations

import shutil

import pytest
from parler_settings import OVERRIDES

from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile

QUICK = {**OVERRIDES, "max_steps": 2, "eval_every": 0, "sample_max_seconds": 0.05, "gen_eval_every": 0}


def _train(ws, dataset, run, **settings):
    from nbhelpers.parler.train import train

    cfg = load_profile("parler", "smoke", {**QUICK, **settings})
    return train(cfg, workspace=Workspace(ws), dataset=str(dataset), run=run)


@pytest.mark.parametrize(("attention", "layer"), [("eager", "ParlerTTSAttention"), ("sdpa", "ParlerTTSSdpaAttention")])
def test_the_decoder_trains_with_the_asked_attention(parler_ws, kn_dataset_dir, attention, layer):
    from nbhelpers.parler.train import parler_of

    result = _train(parler_ws, kn_dataset_dir, f"attn-{attention}", attention=attention)
    assert result.metrics["attention"] == attention and result.metrics["fallbacks"] == {}
    decoder = parler_of(result.model).decoder.model.decoder
    assert {type(layer_.self_attn).__name__ for layer_ in decoder.layers} == {layer}
    assert result.step == 2


def test_compiled_training_matches_eager_and_a_missing_compiler_falls_back(parler_ws, kn_dataset_dir, monkeypatch):
    eager = _train(parler_ws, kn_dataset_dir, "eager", attention="eager")
    compiled = _train(parler_ws, kn_dataset_dir, "compiled", attention="eager", compile=True)
    assert compiled.metrics["compile"] is True and compiled.metrics["fallbacks"] == {}
    for a, b in zip(eager.history, compiled.history, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)

    monkeypatch.setattr(shutil, "which", lambda name: None)  # a CPU machine without a C++ compiler
    fallen = _train(parler_ws, kn_dataset_dir, "no-compiler", attention="eager", compile=True)
    assert fallen.metrics["compile"] is False
    assert "needs a C++ compiler" in fallen.metrics["fallbacks"]["compile"]
    assert [h["loss"] for h in fallen.history] == [h["loss"] for h in eager.history]
