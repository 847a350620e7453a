"""Weights-only restore: exact counts for a vocabulary change, old weight-norm keys converted, loud warning
when more than the text embedding is reset."""

import warnings

import pytest
import torch

from nbhelpers.profiles import load_profile
from nbhelpers.vits.config import build_config
from nbhelpers.vits.restore import (
    TEXT_EMBEDDING,
    RestoreWarning,
    convert_weight_norm_keys,
    plan_restore,
    restore_weights,
)


def tiny(tmp_path, extra_chars: str = "", hidden: int | None = None):
    from TTS.tts.models.vits import Vits

    config = build_config(load_profile("vits", "smoke"), tmp_path)
    config.characters.characters += extra_chars
    if hidden:
        config.model_args.hidden_channels = hidden
    return Vits(config)


def old_style(state):
    """The state dict as checkpoints saved before parametrized weight norm looked."""
    out = {}
    for k, v in state.items():
        out[k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                "weight_v")] = v
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = tiny(path)
    torch.save({"model": model.state_dict(), "step": 7}, path / "source.pth")
    return model, path / "source.pth"


def test_vocabulary_change_resets_only_the_text_embedding(source, tmp_path):
    src, ckpt = source
    torch.manual_seed(1)
    target = tiny(tmp_path, extra_chars="xyz")
    n = len(target.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RestoreWarning)
        report = restore_weights(target, ckpt)
    assert report.total == n
    assert report.reinitialised == [TEXT_EMBEDDING]
    assert report.restored == n - 1
    assert report.unused == [TEXT_EMBEDDING]  # the old, smaller embedding had no place
    assert target.text_encoder.emb.weight.shape[0] == src.text_encoder.emb.weight.shape[0] + 3
    for k, v in src.state_dict().items():
        if k != TEXT_EMBEDDING:
            assert torch.equal(target.state_dict()[k], v), k


def test_old_weight_norm_keys_are_converted(source, tmp_path):
    src, _ = source
    state = old_style(src.state_dict())
    pairs = sum(k.endswith(".weight_g") for k in state)
    assert pairs > 10  # the tiny VITS still has many weight-normed convolutions
    converted, n = convert_weight_norm_keys(state)
    assert n == pairs and set(converted) == set(src.state_dict())
    # without the conversion every weight-normed tensor would be reinitialised (coqui's partial load)
    target = tiny(tmp_path, extra_chars="xyz")
    target_keys = set(target.state_dict())
    assert len([k for k in target_keys if k not in state]) == 2 * pairs
    path = tmp_path / "old.pth"
    torch.save({"model": state}, path)
    report = restore_weights(target, path)
    assert report.converted_weight_norm == pairs
    assert report.reinitialised == [TEXT_EMBEDDING]
    for wn in [k for k in src.state_dict() if ".parametrizations.weight.original" in k]:
        assert torch.equal(target.state_dict()[wn], src.state_dict()[wn]), wn


def test_architecture_mismatch_warns_loudly(source, tmp_path):
    _, ckpt = source
    target = tiny(tmp_path, hidden=48)
    with pytest.warns(RestoreWarning, match="more than the text embedding was reset"):
        report = restore_weights(target, ckpt)
    assert len(report.unexpected_resets) > 5
    assert "WARNING" in report.summary()


def test_plan_counts_discriminator_separately(source, tmp_path):
    src, _ = source
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("disc.")}
    target = tiny(tmp_path)
    _, report = plan_restore(target, state)
    assert report.reinitialised and all(k.startswith("disc.") for k in report.reinitialised)
    assert report.unexpected_resets == []
