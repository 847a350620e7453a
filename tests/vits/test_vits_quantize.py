"""The int8 ONNX variant: only the decoder convolutions are quantised (the waveform-writing conv_post stays fp32),
ONNX Runtime really runs them as integer QLinearConv, the audio stays spectrally close to fp32 ONNX, the checks
catch audio that is not; and the recipe keeps a real (Piper) VITS intelligible to Whisper."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nbhelpers.bench.run import ENGLISH_TEXTS
from nbhelpers.profiles import load_profile
from nbhelpers.vits.config import TEST_SENTENCES, build_config
from nbhelpers.vits.export import OnnxVits, export_onnx, fold_weight_norm
from nbhelpers.vits.piper_int8 import PiperOnnx, check_piper_int8, piper_paths, quantize_piper
from nbhelpers.vits.quantize import compare_int8, decoder_convs, quantize_vits, spectral_distance


def _tiny(seed, tmp_path):
    from TTS.tts.models.vits import Vits

    torch.manual_seed(seed)
    return Vits(build_config(load_profile("vits", "smoke"), tmp_path)).eval()


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q")
    model = _tiny(3, tmp)
    fp32 = export_onnx(model, tmp / "m.onnx")
    return model, fp32, quantize_vits(fp32, tmp / "m.int8.onnx", model.config), tmp


def test_only_decoder_convs_are_int8_and_ort_runs_them_as_integer(tiny_int8):
    model, fp32, int8, tmp = tiny_int8
    targets = decoder_convs(fp32)
    assert targets and all(n.startswith("/waveform_decoder/") for n in targets)
    assert not any("conv_post" in n for n in targets)
    graph = onnx.load(str(int8)).graph
    dq_out = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = {n.name: n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")}
    assert all(convs[n].input[1] in dq_out for n in targets)  # int8 weights, dequantised in the QDQ graph
    post = next(n for name, n in convs.items() if "conv_post" in name)
    assert post.input[1] not in dq_out  # fp32 weight
    ups = [n for n in convs.values() if n.op_type == "ConvTranspose"]
    assert ups and not any(n.input[1] in dq_out for n in ups)  # no integer ConvTranspose kernel in ORT: fp32
    flow = [n for name, n in convs.items() if name.startswith(("/flow/", "/text_encoder/"))]
    assert flow and not any(n.input[1] in dq_out for n in flow)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp / "optimized.onnx")
    ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    fused = [n for n in onnx.load(str(tmp / "optimized.onnx")).graph.node if n.op_type == "QLinearConv"]
    assert len(fused) == len(targets)


def test_int8_audio_close_to_fp32_and_a_different_model_is_caught(tiny_int8):
    model, fp32, int8, tmp = tiny_int8
    a, b = OnnxVits(fp32, model.config), OnnxVits(int8, model.config)
    result = compare_int8(a, b, TEST_SENTENCES, max_convergence=0.05)
    assert result["ok"] and result["lengths_match"] and result["sentences"] == len(TEST_SENTENCES), result
    aligned = result["aligned"]  # time-aligned pairs: PESQ/STOI, or the reason none could be scored
    assert ("pesq_wb_mean" in aligned and 1.0 <= aligned["pesq_wb_mean"] <= 4.7) or aligned["not_available"], aligned
    other = fold_weight_norm(_tiny(3, tmp))
    with torch.no_grad():
        other.waveform_decoder.conv_post.weight.mul_(0.5)  # quieter audio, same lengths
    drifted = OnnxVits(export_onnx(other, tmp / "other.onnx"), model.config)
    assert not compare_int8(a, drifted, TEST_SENTENCES[:2], max_convergence=0.05)["ok"]


def test_spectral_distance_scales_with_noise_and_rejects_length_mismatch():
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    ref = (0.5 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    same = spectral_distance(ref, ref.copy())
    assert same["spectral_convergence"] == 0 and same["log_spectral_distance_db"] == 0
    quiet = spectral_distance(ref, ref + 0.003 * rng.standard_normal(ref.size).astype(np.float32))
    loud = spectral_distance(ref, ref + 0.1 * rng.standard_normal(ref.size).astype(np.float32))
    assert 0 < quiet["spectral_convergence"] < 0.1 < loud["spectral_convergence"]
    assert quiet["log_spectral_distance_db"] < loud["log_spectral_distance_db"]
    with pytest.raises(ValueError, match="lengths differ"):
        spectral_distance(ref, ref[:-10])


def test_int8_recipe_keeps_a_real_vits_intelligible(tmp_path):
    """Piper en_US-joe-medium (trained weights) through the same recipe: Whisper base CER of int8 within 5
    points of fp32, audio spectrally close."""
    fp32 = PiperOnnx(piper_paths()[0], threads=2)
    int8 = PiperOnnx(quantize_piper(tmp_path / "joe.int8.onnx"), threads=2)
    result = check_piper_int8(fp32, int8, ENGLISH_TEXTS[:3])
    mean = result["mean"]
    assert mean["cer_fp32"] < 0.1, result  # the ASR does understand the fp32 voice
    assert mean["cer_int8"] <= mean["cer_fp32"] + 0.05, result
    assert 0 < mean["spectral_convergence"] < 0.2, result
