"""Workspace selection and artifact discovery under fake /kaggle/input trees in both mount layouts."""

import pytest

from nbhelpers.paths import Workspace, find_artifact, find_artifacts, input_roots, workspace_root


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


@pytest.fixture
def kaggle_input(tmp_path, monkeypatch):
    root = tmp_path / "kaggle-input"
    monkeypatch.setenv("TTS_KAGGLE_INPUT", str(root))
    return root


def test_workspace_from_env_and_explicit(tmp_path, isolated_workspace):
    assert workspace_root() == isolated_workspace.resolve()
    assert workspace_root(tmp_path / "other") == (tmp_path / "other").resolve()
    assert Workspace().run_log == isolated_workspace.resolve() / "run_log.jsonl"


def test_kaggle_platform_uses_kaggle_working(monkeypatch, tmp_path):
    monkeypatch.delenv("TTS_WORKSPACE")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    import nbhelpers.paths as paths
    monkeypatch.setattr(paths, "KAGGLE_WORKING", tmp_path / "kaggle" / "working")
    assert workspace_root() == paths.KAGGLE_WORKING.resolve()


def test_old_layout(kaggle_input):
    target = _touch(kaggle_input / "my-stage01-output" / "data" / "kn_smoke" / "PREPARED.json")
    assert input_roots() == [kaggle_input / "my-stage01-output"]
    assert find_artifact("data/kn_smoke/PREPARED.json") == target


def test_new_layout_notebooks_and_datasets(kaggle_input):
    nb = _touch(kaggle_input / "notebooks" / "alice" / "tts-02-parler" / "parler" / "export" / "config.json")
    ds = _touch(kaggle_input / "datasets" / "alice" / "kannada-ckpt" / "nested" / "parler" / "export" / "config.json")
    assert set(input_roots()) == {nb.parents[2], ds.parents[3]}
    assert set(find_artifacts("parler/export/config.json")) == {nb, ds}


def test_workspace_wins_over_inputs(kaggle_input, isolated_workspace):
    _touch(kaggle_input / "old" / "vits" / "best_model.pth")
    mine = _touch(Workspace().root / "vits" / "best_model.pth")
    assert find_artifacts("vits/best_model.pth")[0] == mine


def test_globs_and_missing_artifact_message(kaggle_input):
    _touch(kaggle_input / "notebooks" / "bob" / "k" / "parler" / "checkpoints" / "step-000000010" / "x")
    assert find_artifacts("parler/checkpoints/step-*")[0].name == "step-000000010"
    assert find_artifact("nothing/here") is None
    with pytest.raises(FileNotFoundError, match="Run notebook 01"):
        find_artifact("data/bn_smoke/PREPARED.json", required=True, hint="Run notebook 01 first.")
