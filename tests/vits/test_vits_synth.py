"""VITS batch synthesis (nbhelpers.vits.synth): batched clips come back in the caller's order, each trimmed to the
length it has when spoken alone, through PyTorch and ONNX Runtime; the batch-1 and batched audio agree except at
the tail of the shorter items; bad input names the text. Random-weight smoke model: mechanics only."""

import numpy as np
import pytest
import torch

from nbhelpers.profiles import load_profile
from nbhelpers.vits.config import TEST_SENTENCES, build_config
from nbhelpers.vits.export import export_onnx, synthesize
from nbhelpers.vits.synth import VitsSynth, expose_durations, pad_batch, trim_batch

# shortest and longest mixed, so sorting by length reorders them and padding is large
TEXTS = [TEST_SENTENCES[2], TEST_SENTENCES[0], "আমি।", TEST_SENTENCES[4], TEST_SENTENCES[1]]

@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory):
    from TTS.tts.models.vits import Vits

    torch.manual_seed(7)
    tmp = tmp_path_factory.mktemp("vits_synth")
    model = Vits(build_config(load_profile("vits", "smoke"), tmp / "run")).eval()  # unfolded: it is also published
    return model, export_onnx(model, tmp / "model.onnx")

def _alone(model, texts):
    return [synthesize(model, t, deterministic=True) for t in texts]

def _check_batched(alone: list[np.ndarray], batched: list[np.ndarray]) -> None:
    assert [len(a) for a in batched] == [len(a) for a in alone]  # own length, caller's order
    assert len({len(a) for a in batched}) > 2  # the texts really differ in length (padding was trimmed)
    for a, b in zip(alone, batched, strict=True):
        head = int(len(a) * 0.8)  # the tail reads the batch's padding through the decoder's convolutions
        assert np.max(np.abs(a[:head] - b[:head])) < 1e-4
        assert np.sqrt(np.mean(b**2)) > 1e-4

def test_torch_batches_keep_order_and_lengths(smoke_model):
    model, _ = smoke_model
    alone = _alone(model, TEXTS)
    synth = VitsSynth.from_torch(model, batch_size=4)
    _check_batched(alone, synth.synthesize(TEXTS, deterministic=True))
    assert synth.describe().startswith("torch on cpu, batch 4")
    assert VitsSynth.from_torch(model).batch_size == 1  # the CPU default: batching did not pay there

def test_onnx_batches_keep_order_and_lengths(smoke_model, tmp_path, monkeypatch):
    model, onnx_path = smoke_model
    monkeypatch.setenv("TTS_BENCH_CACHE", str(tmp_path / "cache"))
    alone = _alone(model, TEXTS)
    synth = VitsSynth.from_onnx(onnx_path, model.config, batch_size=16, threads=1)
    _check_batched(alone, synth.synthesize(TEXTS, deterministic=True))
    one = VitsSynth.from_onnx(onnx_path, model.config, batch_size=1, threads=1)
    for a, b in zip(alone, one.synthesize(TEXTS, deterministic=True), strict=True):
        assert a.shape == b.shape and np.max(np.abs(a - b)) < 1e-3  # batch 1: the export's own output
    assert len(list((tmp_path / "cache").glob("*.durations.onnx"))) == 1  # derived once, then reused

def test_bad_input_names_the_text_and_the_model(smoke_model, tmp_path):
    model, _ = smoke_model
    with pytest.raises(ValueError, match="no symbol the model knows in text.*1: '~~~'"):
        VitsSynth.from_torch(model).synthesize(["আমি।", "~~~"])
    import onnx

    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="other.onnx: expected one Ceil node.*batch_size=1"):
        expose_durations(tmp_path / "other.onnx", tmp_path / "out.onnx")

def test_pad_and_trim_round_trip():
    ids, lengths = pad_batch([[3, 4, 5], [6]])
    assert ids.tolist() == [[3, 4, 5], [6, 0, 0]] and lengths.tolist() == [3, 1]
    audio = np.arange(2 * 12, dtype=np.float32).reshape(2, 1, 12)  # 3 frames of 4 samples, padded
    first, second = trim_batch(audio, np.array([3.0, 1.0]))
    assert first.tolist() == list(range(12)) and second.tolist() == [12, 13, 14, 15]


def test_synth_command_speaks_several_texts_in_batches(smoke_model, tmp_path, capsys, monkeypatch):
    """`synth` with several --text writes one WAV per text (each its own length), through the backend stage 04
    verified, and says which path it used (printed, and in <out>.json with each clip's text)."""
    import json

    import soundfile as sf

    from nbhelpers.paths import Workspace
    from nbhelpers.records import append_stage_record
    from nbhelpers.vits.__main__ import main
    from nbhelpers.vits.export import publish_bundle

    monkeypatch.setenv("TTS_BENCH_CACHE", str(tmp_path / "cache"))
    model, _ = smoke_model
    ws = Workspace(tmp_path / "ws")
    bundle = publish_bundle(model, model.config, 1, ws)
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws, outputs={"bundle": bundle},
                        metrics={"onnx_vs_pytorch": {"ok": True}, "onnx_speedup": 1.2})
    texts = [*(arg for t in TEXTS[:3] for arg in ("--text", t))]
    assert main(["synth", "--workspace", str(ws.root), *texts, "--out", str(tmp_path / "out"), "--batch-size", "2"]) == 0
    assert "with onnx: passed its check when published" in capsys.readouterr().out
    info = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert info["clips"] == {f"{i:02d}.wav": t for i, t in enumerate(TEXTS[:3])}
    assert info["synthesis_path"].startswith("onnx on cpu, batch 2: passed its check")
    lengths = [len(sf.read(tmp_path / "out" / name)[0]) for name in info["clips"]]
    assert len(set(lengths)) == 3 and min(lengths) > 0


def test_the_suite_benchmark_speaks_vits_through_the_same_api(smoke_model, tmp_path, monkeypatch):
    """06's vits-bn variants load through VitsSynth: PyTorch and ONNX Runtime speak a text (the ONNX one through the
    derived model with durations, which only VitsSynth makes)."""
    from nbhelpers.bench import systems
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile
    from nbhelpers.vits.export import publish_bundle

    monkeypatch.setenv("TTS_BENCH_CACHE", str(tmp_path / "cache"))
    model, _ = smoke_model
    ws = Workspace(tmp_path / "ws")
    publish_bundle(model, model.config, 1, ws)
    variants, _ = systems.discover(ws, {**load_profile("bench", "smoke"), "languages": ["bn"]}, ["vits-bn"])
    chosen = {v.backend: v for v in variants if v.backend in ("torch", "onnxruntime[CPU]")}
    assert set(chosen) == {"torch", "onnxruntime[CPU]"}
    for variant in chosen.values():
        audio, sr = variant.load().synth(TEXTS[0], "bn")
        assert sr == 22050 and audio.dtype == np.float32 and len(audio) > 2205
    assert len(list((tmp_path / "cache").glob("*.durations.onnx"))) == 1
