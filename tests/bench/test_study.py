"""The study report is built from the records alone and says what they can and cannot answer."""

from __future__ import annotations

import subprocess
import sys

from nbhelpers.bench.study import finetune_comparison, hardware_rows, write_study
from nbhelpers.measure.ort import missing_providers
from nbhelpers.paths import Workspace
from nbhelpers.records import append_stage_record, stage_run


def parler_run(ws: Workspace, mode: str, trainable: int, loss: float, profile: str = "kaggle-t4",
               gen_eval: dict | None = None) -> None:
    with stage_run("02_parler_finetune", profile=profile, workspace=ws):
        append_stage_record("02_parler_finetune", profile=profile, workspace=ws, metrics={
            "mode": mode, "step": 100, "params_trainable": trainable, "params_total": 1000, "peak_memory_gib": 3.5,
            "seconds_per_step": 0.5, "final_loss": loss, "final_eval_loss": loss + 0.1, "gen_eval": gen_eval or {}})


def bench_row(system: str, device: str, lang: str, rtf: float, **extra) -> dict:
    return {"system": system, "backend": "onnxruntime", "dtype": "float32", "device": device, "language": lang,
            "rtf": rtf, "latency_s_median": rtf * 2, "peak_rss_mib": 300.0, **extra}


def test_study_from_records(tmp_path):
    ws = Workspace(tmp_path / "ws")
    parler_run(ws, "full", 1000, 3.0)
    parler_run(ws, "lora", 25, 3.4)
    try:
        with stage_run("07_pocket_tts_finetune", profile="smoke", workspace=ws):
            raise RuntimeError("out of memory at step 3")
    except RuntimeError:
        pass
    bench = [bench_row("vits", "cpu", "bn", 0.30), bench_row("vits-int8", "cpu", "bn", 0.12),
             bench_row("espeak", "cpu", "kn", 0.01, not_available={"gpu_util_pct": "no CUDA device"})]
    verdict = [{"language": "Bangla (bn)", "use": "vits", "why": "best CER"}]
    out = write_study(ws, bench, verdict, {"kokoro": "no Kannada voice"}, {"CUDAExecutionProvider": "needs a GPU"},
                      tmp_path / "out")
    md = out["markdown"].read_text(encoding="utf-8")
    assert out["html"].read_text(encoding="utf-8").count("<table>") == 4
    # every finished run once (the 'started' lines are not runs), the failed one in the limitations
    assert md.count("| Parler-TTS fine-tune | done |") == 2 and "| Pocket TTS | failed |" in md
    assert "07_pocket_tts_finetune run" in md and "out of memory at step 3" in md
    assert "Smoke profile: Pocket TTS ran a few steps" in md
    assert "kokoro not benchmarked: no Kannada voice" in md and "ONNX Runtime CUDAExecutionProvider: needs a GPU" in md
    assert "| vits-int8 (onnxruntime, float32) | 0.120 |" in md  # the fastest Bangla variant on the CPU
    assert "| Bangla (bn) | vits | best CER |" in md


def test_finetune_comparison_needs_two_modes(tmp_path):
    ws = Workspace(tmp_path)
    parler_run(ws, "full", 1000, 3.0)
    from nbhelpers.records import read_records

    rows, note = finetune_comparison(read_records(ws))
    assert len(rows) == 1 and "Only one fine-tuning variant ran" in note
    parler_run(ws, "lora", 25, 3.4, gen_eval={"cer": "not meaningful here: Whisper base cannot read Kannada",
                                              "pitch_bin_match": 0.5})
    rows, note = finetune_comparison(read_records(ws))
    assert [(r["variant"], r["trainable %"]) for r in rows] == [("full", "100.00"), ("lora", "2.50")]
    assert (rows[0]["gen-eval CER"], rows[1]["gen-eval CER"]) == ("n/a", "not meaningful here: Whisper base cannot "
                                                                         "read Kannada")
    assert rows[1]["pitch bin match"] == "0.50"
    assert note == "Same step budget in every mode."


def test_hardware_rows_pick_the_fastest_per_device_and_language():
    rows = hardware_rows([bench_row("a", "cpu", "bn", 0.5), bench_row("b", "cpu", "bn", 0.2),
                          bench_row("c", "cuda:0", "bn", 0.05, peak_cuda_mib=900.0, gpu_util_pct=71.0),
                          bench_row("d", "cpu", "kn", 0.9)])
    assert [(r["device"], r["language"], r["fastest"].split()[0], r["GPU util %"]) for r in rows] == [
        ("cpu", "Bangla (bn)", "b", "n/a"), ("cpu", "Kannada (kn)", "d", "n/a"),
        ("cuda:0", "Bangla (bn)", "c", "71")]
    assert rows[2]["peak memory MiB"] == "900"


def test_missing_providers_name_what_they_need():
    missing = missing_providers()
    import onnxruntime as ort

    assert not set(missing) & set(ort.get_available_providers())
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "onnxruntime-gpu" in missing["CUDAExecutionProvider"]


def test_study_command_without_a_run_says_what_to_do(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nbhelpers.bench", "study", "--profile", "smoke", "--workspace",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "run `python -m nbhelpers.bench run` first" in out.stderr
