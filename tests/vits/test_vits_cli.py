"""The command line reports a failed pre-flight with its fix and exit code 2 instead of a traceback; synth runs
every backend and quantize adds the int8 model."""

import json
import subprocess
import sys

import soundfile as sf
import torch

# Imported at collection: coqui's trainer binds its log handler to the stderr of that moment, which must not be a
# test's capsys stream (closed after that test).
from TTS.tts.models.vits import Vits

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import append_stage_record
from nbhelpers.vits.__main__ import main
from nbhelpers.vits.config import build_config
from nbhelpers.vits.export import publish_bundle


def test_preflight_cli_reports_missing_dataset(tmp_path, bn_dataset):
    missing = tmp_path / "missing"
    out = subprocess.run([sys.executable, "-m", "nbhelpers.vits", "preflight", "--profile", "smoke",
                          "--workspace", str(tmp_path / "ws"), "--dataset-dir", str(missing)],
                         capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "pre-flight failed" in out.stderr and str(missing) in out.stderr and "Fix" in out.stderr
    ok = subprocess.run([sys.executable, "-m", "nbhelpers.vits", "preflight", "--profile", "smoke",
                         "--workspace", str(tmp_path / "ws"), "--dataset-dir", str(bn_dataset)],
                        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "[ok] characters" in ok.stdout


def test_synth_backends_and_quantize_command(tmp_path, capsys):
    """synth --backend onnx-int8 on a bundle without the int8 model names the fix; `quantize` adds it; all three
    backends then write audio of the same length (deterministic lengths come from the same duration predictor)."""
    torch.manual_seed(0)
    model = Vits(build_config(load_profile("vits", "smoke"), tmp_path / "run")).eval()
    model.inference_noise_scale = model.inference_noise_scale_dp = 0.0
    model.config.model_args.inference_noise_scale = model.config.model_args.inference_noise_scale_dp = 0.0
    ws = Workspace(tmp_path / "ws")
    bundle = publish_bundle(model, model.config, 1, ws)
    common = ["--workspace", str(ws.root), "--text", "আমি বাংলায় গান গাই।"]
    assert main(["synth", *common, "--out", str(tmp_path / "x.wav"), "--backend", "onnx-int8"]) == 2
    assert f"python -m nbhelpers.vits quantize --bundle {bundle}" in capsys.readouterr().err
    assert main(["quantize", "--workspace", str(ws.root)]) == 0 and (bundle / "model.int8.onnx").is_file()
    lengths = set()
    for backend in ("torch", "onnx", "onnx-int8"):
        out = tmp_path / f"{backend}.wav"
        assert main(["synth", *common, "--out", str(out), "--backend", backend]) == 0
        audio, sr = sf.read(out)
        assert sr == 22050 and len(audio) > 2205
        lengths.add(len(audio))
    assert len(lengths) == 1, lengths
    capsys.readouterr()
    assert main(["synth", *common, "--out", str(tmp_path / "auto.wav")]) == 0  # auto, nothing checked yet: torch
    assert "with torch: no stage-04 record checked" in capsys.readouterr().out
    checks = {"onnx_vs_pytorch": {"ok": True}, "int8_vs_fp32": {"ok": True}, "onnx_speedup": 1.6,
              "onnx_int8_speedup": 2.1}
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws, outputs={"bundle": bundle},
                        metrics=checks)
    assert main(["synth", *common, "--out", str(tmp_path / "auto.wav")]) == 0
    assert "with onnx-int8: passed its check when published and ran 2.10x" in capsys.readouterr().out
    append_stage_record("04_vits_bangla_finetune", profile="smoke", workspace=ws, outputs={"bundle": bundle},
                        metrics={**checks, "int8_vs_fp32": {"ok": False}})
    assert main(["synth", *common, "--out", str(tmp_path / "auto.wav")]) == 0
    assert "with onnx: passed its check" in capsys.readouterr().out  # the int8 model failed its check
    # --split: one clip per sentence of a paragraph, in a folder, with each clip's sentence in <out>.json
    para = "আমি বাংলায় গান গাই। ঢাকা বাংলাদেশের রাজধানী? হ্যাঁ!"
    clips = tmp_path / "clips"
    assert main(["synth", "--workspace", str(ws.root), "--text", para, "--split", "--out", str(clips)]) == 0
    info = json.loads(clips.with_name("clips.json").read_text(encoding="utf-8"))
    assert info["clips"] == {"00.wav": "আমি বাংলায় গান গাই।", "01.wav": "ঢাকা বাংলাদেশের রাজধানী?", "02.wav": "হ্যাঁ!"}
    assert all(sf.info(clips / name).frames > 0 for name in info["clips"])
