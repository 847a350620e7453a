"""Settings ranges (nbhelpers/profiles/limits.py): every setting of every stage's every profile has a declared
limit that its real value meets; out-of-range values, wrong types and wrong shapes are refused by load_profile
with a SettingsError naming the stage, key, value, source and fix; declared choices match the code's."""

from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbhelpers import profiles
from nbhelpers.profiles import LIMITS, PROFILE_DIR, PROFILES, SettingsError, load_profile, stages
from nbhelpers.profiles.limits import KINDS, check_limit_entry, check_settings


def _file(stage: str) -> dict:
    with (PROFILE_DIR / f"{stage}.toml").open("rb") as f:
        return tomllib.load(f)


def _kind(value: object) -> str:
    """A setting's shape and element type, as the profile file gives it."""
    if isinstance(value, list | dict):
        inner = {_kind(v) for v in (value.values() if isinstance(value, dict) else value)}
        return f"{type(value).__name__}[{','.join(sorted(inner))}]"
    return "number" if isinstance(value, float) else type(value).__name__


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stage", stages())
def test_every_setting_of_every_profile_has_a_limit_its_value_meets(stage, profile):
    """A new setting without a [limits] entry fails here (and at load), so no setting skips the range check."""
    limits = _file(stage).get(LIMITS)
    assert limits, f"profiles/{stage}.toml has no [{LIMITS}] table"
    params = dict(load_profile(stage, profile))  # raises SettingsError when a real value breaks its own limit
    params.pop("profile")
    undeclared = sorted(set(params) - set(limits))
    assert not undeclared, f"profiles/{stage}.toml [{LIMITS}] lacks {undeclared}"
    stale = sorted(set(limits) - set(params))
    assert not stale, f"profiles/{stage}.toml [{LIMITS}] declares settings no profile has: {stale}"
    for key, limit in limits.items():
        check_limit_entry(key, limit)
        value = params[key]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric or isinstance(value, bool):  # numbers and booleans are never free-form
            assert limit not in ("text", "table"), f"{stage}.{key} = {value!r} is declared {limit!r}"
        if isinstance(value, bool):
            assert limit == "bool", f"{stage}.{key} is a boolean but declared {limit!r}"


@pytest.mark.parametrize("stage", stages())
def test_profiles_agree_on_each_settings_type(stage):
    """Whole-number-ness comes from the profile's value: a 10 in one profile and a 10.0 in another would make a
    setting whole-only under one profile. Types (and list/table shapes) must agree across profiles."""
    loaded = {p: load_profile(stage, p) for p in PROFILES}
    for key in loaded["smoke"]:
        if key == "profile":
            continue
        kinds = {p: _kind(loaded[p][key]) for p in PROFILES}
        # an empty list in one profile and a filled one in another is the same setting
        kinds = {p: k for p, k in kinds.items() if not k.endswith("[]")}
        assert len(set(kinds.values())) <= 1, f"{stage}.{key}: {kinds}"


def test_the_limits_table_is_not_a_profile():
    with pytest.raises(ValueError, match="unknown profile 'limits'"):
        load_profile("parler", "limits")


@pytest.mark.parametrize("stage,key,bad", [
    ("parler", "max_steps", -5), ("parler", "max_steps", 0), ("parler", "max_steps", 2.5),
    ("parler", "batch_size", 0), ("parler", "learning_rate", 0), ("parler", "learning_rate", -1e-3),
    ("parler", "learning_rate", float("nan")), ("parler", "lora_dropout", 1.0), ("parler", "mode", "half"),
    ("parler", "mixed_precision", "fp8"), ("parler", "lr_schedule", "cosine_restarts"),
    ("parler", "freeze_text_encoder", "yes"), ("parler", "freeze_text_encoder", 1), ("parler", "max_steps", True),
    ("parler", "max_steps", "20"), ("parler", "codebook_weights", [1.0, -0.5]),
    ("parler", "codebook_weights", "1,1"), ("parler", "sample_sentences", "one sentence"),
    ("parler", "sample_sentences", ["ok", 3]),
    ("distill", "student_decoder_layers", 0), ("distill", "temperature", 0), ("distill", "teacher_cache", "ram"),
    ("distill", "eval_repeats", 0), ("vits", "max_steps", -5), ("vits", "batch_size", 0), ("vits", "start", "big"),
    ("vits", "mixed_precision", "true"), ("vits", "budget_seconds", -1), ("pocket", "max_steps", -5),
    ("pocket", "ema_decay", 1.0), ("pocket", "flow_type", "euler"), ("pocket", "text_dropout", 1.5),
    ("kokoro", "speed", 3.0), ("kokoro", "max_phonemes", 8), ("kokoro", "backend", "tensorrt"),
    ("bench", "repeats", 0), ("bench", "systems", ["espeak-ng", "nope"]), ("bench", "kokoro_backends", ["gpu"]),
    ("data", "workers", 0), ("data", "rates", {"parler": 0}), ("data", "split_fractions", [0.8, 0.3, -0.1]),
    ("data", "vad", "webrtc"), ("data", "max_clip_fraction", 2),
])
def test_out_of_range_override_is_refused_naming_key_value_source_and_fix(stage, key, bad):
    with pytest.raises(SettingsError) as err:
        load_profile(stage, "smoke", {key: bad})
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert f"stage {stage!r}" in message and "profile 'smoke'" in message and f"  {key} = " in message
    assert f"(from --set {key}=" in message and "fix: " in message and "must be" in message


def test_integer_settings_accept_whole_numbers_and_float_settings_accept_both():
    assert load_profile("parler", "smoke", {"max_steps": 1})["max_steps"] == 1
    assert load_profile("parler", "smoke", {"learning_rate": 1})["learning_rate"] == 1  # closed upper end
    assert load_profile("vits", "smoke", {"budget_seconds": 60})["budget_seconds"] == 60
    assert load_profile("vits", "smoke", {"max_steps": 0})["max_steps"] == 0  # 0: no step limit
    assert load_profile("parler", "smoke", {"codebook_weights": [1, 0.5]})["codebook_weights"] == [1, 0.5]
    assert load_profile("pocket", "smoke", {"ema_decay": 0.0})["ema_decay"] == 0.0


def test_a_whole_number_for_a_float_setting_arrives_as_a_float():
    """Stages read settings without casts (limits.typed); that profiles agree on each type is
    test_profiles_agree_on_each_settings_type."""
    lr = load_profile("parler", "smoke", {"learning_rate": 1})["learning_rate"]
    assert type(lr) is float and lr == 1.0
    weights = load_profile("parler", "smoke", {"codebook_weights": [1, 0.5]})["codebook_weights"]
    assert [type(w) for w in weights] == [float, float]
    steps = load_profile("parler", "smoke", {"max_steps": 3})["max_steps"]
    assert type(steps) is int


def test_every_bad_value_is_listed_in_one_error():
    with pytest.raises(SettingsError) as err:
        load_profile("parler", "smoke", {"max_steps": -5, "batch_size": 0, "mode": "x"})
    message = str(err.value)
    assert "3 setting(s) out of range" in message
    assert all(f"  {k} = " in message for k in ("max_steps", "batch_size", "mode"))
    assert "must be a whole number in [1, inf]" in message and "must be one of full, lora, 8bit, 4bit" in message


def test_the_message_names_the_source_of_the_value(tmp_path, monkeypatch):
    """A value from the size-override file names that file; one from the profile names its table (the one it is
    inherited from, when it is); one from --set names --set and the profile's own value."""
    sizes = tmp_path / "sizes.toml"
    sizes.write_text("[vits]\nmax_steps = -1\n", encoding="utf-8")
    monkeypatch.setenv("TTS_SIZE_OVERRIDES", str(sizes))
    with pytest.raises(SettingsError, match=rf"max_steps = -1 \(from {sizes} \[vits\]\).*fix: change max_steps in "):
        load_profile("vits", "kaggle-t4")
    monkeypatch.delenv("TTS_SIZE_OVERRIDES")

    toy = tmp_path / "profiles"
    toy.mkdir()
    (toy / "toy.toml").write_text('[smoke]\nmax_steps = -3\n[kaggle-t4]\ninherit = "smoke"\n[colab-t4]\n'
                                  'inherit = "kaggle-t4"\n[limits]\nmax_steps = [1, inf]\n', encoding="utf-8")
    monkeypatch.setattr(profiles, "PROFILE_DIR", toy)
    with pytest.raises(SettingsError, match=r"max_steps = -3 \(from profiles/toy.toml \[smoke\]\) .* fix: change "
                                            r"max_steps in profiles/toy.toml \[smoke\]"):
        load_profile("toy", "colab-t4")
    monkeypatch.undo()
    with pytest.raises(SettingsError, match=r"\(from --set max_steps=-5\).*leave it out \(the profile's value is 16\)"):
        load_profile("parler", "smoke", {"max_steps": -5})


def test_a_setting_without_a_limit_or_with_a_malformed_one_is_refused():
    with pytest.raises(SettingsError, match="declares no limit for new_knob"):
        check_settings("parler", "smoke", {"new_knob": 3}, {"new_knob": 3}, {}, str)
    for bad in ([5, 1], [0, 1, "closed"], "number", [], [0, "x"]):
        with pytest.raises(SettingsError, match="is not a limit"):
            check_limit_entry("k", bad)
    for good in ([0, 1], [0, math.inf, "open-min"], ["a", "b"], *KINDS):
        check_limit_entry("k", good)


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_max_steps_is_accepted_exactly_when_positive(n):
    limits = _file("parler")[LIMITS]
    params = {"max_steps": n}
    try:
        check_settings("parler", "smoke", params, {"max_steps": 16}, {"max_steps": limits["max_steps"]}, str)
        accepted = True
    except SettingsError:
        accepted = False
    assert accepted == (n >= 1)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_learning_rate_is_accepted_exactly_in_its_half_open_range(x):
    limits = _file("parler")[LIMITS]
    try:
        check_settings("parler", "smoke", {"learning_rate": x}, {"learning_rate": 3e-3},
                       {"learning_rate": limits["learning_rate"]}, str)
        accepted = True
    except SettingsError:
        accepted = False
    assert accepted == (0 < x <= 1)


def test_declared_choices_match_the_code():
    """The [limits] choices of main-stack stages are the values their code accepts (a value added to one and not
    the other fails here)."""
    from nbhelpers.bench.systems import REGISTRY
    from nbhelpers.kokoro.backends import BACKENDS
    from nbhelpers.pocket.model import FLOW_TYPES
    from nbhelpers.vits.config import STARTING_POINTS

    assert _file("vits")[LIMITS]["start"] == list(STARTING_POINTS)
    assert _file("kokoro")[LIMITS]["backend"] == list(BACKENDS)
    assert _file("pocket")[LIMITS]["flow_type"] == list(FLOW_TYPES)
    assert sorted(_file("bench")[LIMITS]["systems"]) == sorted(REGISTRY)
    assert set(_file("bench")[LIMITS]["kokoro_backends"]) == set(BACKENDS) - {"auto"}
