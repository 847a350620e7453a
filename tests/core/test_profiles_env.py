"""Profile selection, inheritance and overrides; environment detection and dtype choice."""

import tomllib

import pytest

from nbhelpers import env
from nbhelpers.profiles import PROFILE_DIR, PROFILES, load_profile, resolve_profile, stages


@pytest.mark.parametrize("variables,expected", [
    ({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, "kaggle-t4"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle-t4"),
    ({"COLAB_RELEASE_TAG": "release-colab_20261101"}, "colab-t4"),
    ({}, "smoke"),
])
def test_auto_profile_follows_platform(monkeypatch, variables, expected):
    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    assert resolve_profile("auto", has_gpu=False) == expected


def test_local_gpu_and_env_override(monkeypatch):
    assert resolve_profile("auto", platform="local", has_gpu=True) == "kaggle-t4"
    monkeypatch.setenv("TTS_PROFILE", "colab-t4")
    assert resolve_profile("auto") == "colab-t4"
    assert resolve_profile("smoke") == "smoke"
    with pytest.raises(ValueError, match="unknown profile 'kaggle'"):
        resolve_profile("kaggle")


def test_inherit_and_overrides():
    colab = load_profile("suite", "colab-t4")
    kaggle = load_profile("suite", "kaggle-t4")
    assert colab["keep_checkpoints"] == kaggle["keep_checkpoints"]  # inherited
    assert colab["budget_hours"] < kaggle["budget_hours"]            # overridden
    assert colab["profile"] == "colab-t4"
    assert load_profile("suite", "smoke", {"seed": 7})["seed"] == 7
    with pytest.raises(KeyError, match="'sead' is not a parameter of stage 'suite'"):
        load_profile("suite", "smoke", {"sead": 7})


@pytest.mark.parametrize("stage", stages())
def test_settings_are_a_frozen_typed_dataclass_per_stage(stage, tmp_path):
    """Every stage's settings come back as its own frozen dataclass: fields typed as the file's [smoke] values,
    read by attribute or key, refused on assignment, surviving pickling (multi-process launches) and JSON records."""
    import dataclasses
    import json
    import pickle

    from nbhelpers.profiles import settings_class
    from nbhelpers.records import write_json

    cls = settings_class(stage)
    for profile in PROFILES:
        settings = load_profile(stage, profile)
        assert type(settings) is cls and dataclasses.is_dataclass(settings)
        for field in dataclasses.fields(cls):
            value = getattr(settings, field.name)
            assert value == settings[field.name]
            assert isinstance(value, field.type), (stage, profile, field.name, field.type, value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            settings.profile = "other"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(settings)) == settings == dict(settings)
    path = write_json(tmp_path / f"{stage}.json", {"settings": settings})
    assert json.loads(path.read_text(encoding="utf-8"))["settings"] == dict(settings)


@pytest.mark.parametrize("stage", stages())
def test_every_stage_defines_every_profile_with_the_same_keys(stage):
    """A parameter present in one profile but missing in another would break that profile only on Kaggle."""
    with (PROFILE_DIR / f"{stage}.toml").open("rb") as f:
        tomllib.load(f)  # valid TOML
    keys = {p: set(load_profile(stage, p)) for p in PROFILES}
    assert keys["smoke"] == keys["kaggle-t4"] == keys["colab-t4"], f"{stage}.toml: profiles differ in keys"


@pytest.mark.parametrize("capability,expected", [((7, 5), "float16"), ((7, 0), "float16"), ((8, 0), "bfloat16"),
                                                 ((9, 0), "bfloat16"), (None, "float32")])
def test_recommended_dtype(capability, expected):
    assert env.recommended_dtype(capability, cuda=capability is not None) == expected


def test_dtype_on_this_cpu_machine_and_platform(monkeypatch):
    assert env.recommended_dtype() == "float32"  # CI machines have no GPU
    assert env.detect_platform() == "local"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert env.detect_platform() == "kaggle-batch" and env.is_headless()


def test_environment_report_names_the_stack():
    report = env.environment_report()
    assert report.stack in ("main", "parler")
    assert report.cpu_count >= 1 and "platform" in str(report)
