"""Shared command-line parsing of the stages."""

import argparse

import pytest

from nbhelpers.cli import add_stage_arguments, add_training_arguments, budget_from_args, parse_overrides


def test_overrides_parse_json_and_strings():
    assert parse_overrides(["max_steps=20", "lr=1e-3", "mode=lora", "flag=true", "layers=[0,3]", "s=a=b"]) == {
        "max_steps": 20, "lr": 1e-3, "mode": "lora", "flag": True, "layers": [0, 3], "s": "a=b"}
    with pytest.raises(SystemExit, match="write KEY=VALUE"):
        parse_overrides(["max_steps"])


def test_stage_and_training_arguments():
    p = argparse.ArgumentParser()
    add_stage_arguments(p, dataset_help="dataset")
    add_training_arguments(p)
    args = p.parse_args(["--set", "a=1", "--budget-seconds", "30", "--dataset", "kn_smoke"])
    assert args.profile == "auto" and args.dataset == "kn_smoke" and args.set == ["a=1"]
    assert budget_from_args(args).seconds == 30
    assert budget_from_args(p.parse_args([])) is None
