"""T4 profiles are checked against T4 memory at load time, from the figures measured in docs/benchmarks.md."""

import re

import pytest

from nbhelpers.paths import PROJECT_ROOT
from nbhelpers.profiles import load_profile
from nbhelpers.profiles.t4 import MEASURED_PEAK_GIB, T4_BUDGET_GIB, T4MemoryError, training_memory_gib


def test_figures_are_the_ones_docs_benchmarks_reports():
    text = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    section = text[text.index("## 02 Parler-TTS fine-tune (training memory per mode)"):]
    rows = dict(re.findall(r"^\| (full[^|]*|LoRA r=8|8-bit base \+ LoRA|4-bit NF4 base \+ LoRA) \|[^|]*\| ([\d.]+) GiB",
                           section, flags=re.M))
    names = {("full", True): "full (decoder + prompt embeddings; T5, DAC frozen)",
             ("full", False): "full, no gradient checkpointing", ("lora", True): "LoRA r=8",
             ("8bit", True): "8-bit base + LoRA", ("4bit", True): "4-bit NF4 base + LoRA"}
    assert {key: float(rows[name]) for key, name in names.items()} == MEASURED_PEAK_GIB


@pytest.mark.parametrize("stage", ["parler", "distill"])
@pytest.mark.parametrize("profile", ["kaggle-t4", "colab-t4"])
def test_real_profiles_fit_a_t4(stage, profile):
    params = load_profile(stage, profile)  # would raise T4MemoryError
    assert training_memory_gib(stage, params)["total"] <= T4_BUDGET_GIB


def test_reference_batch_reproduces_the_measured_peak_and_grows_with_the_batch():
    ref = {"batch_size": 4, "max_audio_seconds": 10.0, "gradient_checkpointing": True}
    for mode in ("full", "lora", "8bit", "4bit"):
        assert training_memory_gib("parler", {**ref, "mode": mode})["total"] == pytest.approx(
            MEASURED_PEAK_GIB[(mode, True)], abs=0.01)
    small = training_memory_gib("parler", {**ref, "mode": "full"})
    double = training_memory_gib("parler", {**ref, "mode": "full", "batch_size": 8})
    assert double["fixed"] == small["fixed"] and double["activations"] == pytest.approx(2 * small["activations"], 0.01)
    no_gc = training_memory_gib("parler", {**ref, "mode": "lora", "gradient_checkpointing": False})
    assert no_gc["total"] > MEASURED_PEAK_GIB[("lora", True)]


def test_a_batch_that_cannot_fit_is_refused_with_the_estimate_and_the_fix():
    with pytest.raises(T4MemoryError) as err:
        load_profile("parler", "kaggle-t4", {"batch_size": 8})
    message = str(err.value)
    assert "profiles/parler.toml [kaggle-t4]" in message and "batch_size 8" in message
    assert "GiB" in message and "grad_accum" in message and "mode = 'lora'" in message
    with pytest.raises(T4MemoryError, match="teacher|batch_size 16"):
        load_profile("distill", "colab-t4", {"batch_size": 16})
    with pytest.raises(T4MemoryError, match="no bf16"):
        load_profile("parler", "colab-t4", {"mixed_precision": "bf16"})


def test_smoke_and_other_stages_are_not_t4_checked():
    assert load_profile("parler", "smoke", {"batch_size": 64, "max_audio_seconds": 30.0})["batch_size"] == 64
    assert load_profile("vits", "kaggle-t4")["profile"] == "kaggle-t4"
