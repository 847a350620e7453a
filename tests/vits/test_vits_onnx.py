"""ONNX Runtime output matches PyTorch for the same input (deterministic noise scales), and the comparison
does catch a model that differs."""

import numpy as np
import torch

from nbhelpers.profiles import load_profile
from nbhelpers.vits.config import TEST_SENTENCES, build_config
from nbhelpers.vits.export import OnnxVits, compare_backends, export_onnx, fold_weight_norm, synthesize


def test_onnx_matches_pytorch_and_mismatch_is_caught(tmp_path):
    from TTS.tts.models.vits import Vits

    torch.manual_seed(3)
    model = Vits(build_config(load_profile("vits", "smoke"), tmp_path)).eval()
    onnx = OnnxVits(export_onnx(model, tmp_path / "m.onnx"), model.config)
    audio = synthesize(model, TEST_SENTENCES[2], deterministic=True)
    assert np.sqrt(np.mean(audio**2)) > 1e-4  # a real signal, not silence that would match trivially
    result = compare_backends(model, onnx, tolerance=1e-3)
    assert result["ok"] and result["lengths_match"] and result["sentences"] == len(TEST_SENTENCES), result
    aligned = result["aligned"]  # the same audio within 1e-3: PESQ near its ceiling, or why it could not score
    assert ("pesq_wb_mean" in aligned and aligned["pesq_wb_mean"] > 4.0) or aligned["not_available"], aligned
    with torch.no_grad():
        model.waveform_decoder.conv_pre.bias.add_(0.05)  # the PyTorch model drifts from the export
    assert not compare_backends(model, onnx, tolerance=1e-3)["ok"]


def test_folded_weight_norm_matches_and_drops_the_parametrizations(tmp_path):
    """The PyTorch side of the timing runs with weight norm folded, like the export: same audio, plain weights."""
    from torch.nn.utils import parametrize
    from TTS.tts.models.vits import Vits

    torch.manual_seed(5)
    model = Vits(build_config(load_profile("vits", "smoke"), tmp_path)).eval()
    before = synthesize(model, TEST_SENTENCES[0], deterministic=True)
    assert any(parametrize.is_parametrized(m) for m in model.modules())
    fold_weight_norm(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    after = synthesize(model, TEST_SENTENCES[0], deterministic=True)
    assert before.shape == after.shape and np.max(np.abs(before - after)) < 1e-5
    onnx = OnnxVits(export_onnx(model, tmp_path / "folded.onnx"), model.config)
    assert compare_backends(model, onnx, tolerance=1e-3, texts=TEST_SENTENCES[:2])["ok"]
