"""End to end on CPU: a tiny random teacher, a 12-row espeak-ng Kannada dataset, a few distillation steps."""

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nbhelpers.paths import Workspace
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples

SENTENCES = ["ನಮಸ್ಕಾರ", "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ", "ಇಂದು ಮಳೆ ಬಂತು", "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ", "ಹಕ್ಕಿ ಹಾರುತ್ತದೆ",
             "ನೀರು ಕುಡಿಯಿರಿ"]


@pytest.fixture(scope="module")
def kn_data(tmp_path_factory):
    import datasets
    import soxr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(12):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "kn", "-s", "200", "-w", str(wav), SENTENCES[i % 6]], check=True,
                           capture_output=True)
            audio, sr = sf.read(wav, dtype="float32")
            audio = soxr.resample(audio, sr, 44100).astype(np.float32)[:44100]
            rows.append({"audio": {"array": audio, "sampling_rate": 44100}, "text": SENTENCES[i % 6],
                         "text_description": "A calm female voice.", "duration": len(audio) / 44100})
    feats = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                               "text_description": datasets.Value("string"), "duration": datasets.Value("float32")})
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=feats)
                               for k, v in (("train", rows[:8]), ("validation", rows[8:10]), ("test", rows[10:]))})
    path = tmp_path_factory.mktemp("kn") / "parler"
    dd.save_to_disk(str(path))
    return path


def _params(**extra):
    from nbhelpers.profiles import load_profile

    return load_profile("distill", "smoke", {"teacher": "tiny", "max_steps": 4, "eval_every": 2, "save_every": 2,
                                "eval_sentences": ["ನಮಸ್ಕಾರ"], "eval_frames": 12, "sample_max_seconds": 0.2,
                                "sample_sentences": ["ನಮಸ್ಕಾರ"], **extra})


def test_distillation_run_exports_student_and_comparison(kn_data):
    from parler_tts import ParlerTTSForConditionalGeneration

    from nbhelpers.distill.pipeline import run

    ws = Workspace()
    out = run(_params(), workspace=ws, dataset=str(kn_data))
    assert out.status == "done" and len(out.history) == 4
    assert {"ce", "kd", "hidden", "encoder"} <= set(out.history[0])
    table = json.loads((out.paths.run_dir / "comparison.json").read_text())
    assert set(table) == {"teacher", "student", "student_int8"}
    t, s = table["teacher"], table["student"]
    assert s["params_decoder"] < t["params_decoder"] and s["params_embed_prompts"] < t["params_embed_prompts"]
    assert s["params_total_ratio"] < 1 and 0 <= s["code_accuracy"] <= 1 and s["test_ce"] > 0
    assert table["student_int8"]["weights_mib"] < s["weights_mib"]
    assert s["latency_s"] > 0 and s["rtf"] > 0 and s["record"]["schema"] == "tts-bench/1"
    from nbhelpers.measure.harness import read_records as bench_records
    records = bench_records(out.paths.run_dir / "bench_records.jsonl", strict=True)
    assert [r["system"] for r in records] == ["teacher", "student", "student_int8"]
    # quality on the parler stack: Whisper CER, DNSMOS and MCD to the test row's recording, for every system
    test_row = SENTENCES[10 % 6]  # the fixture's first test-split row (eval_test_rows = 1 on smoke)
    assert t["texts"] == ["ನಮಸ್ಕಾರ", test_row] and [r.text for r in out.references] == [test_row]
    for name, row in table.items():
        assert 0 <= row["cer"] <= 1 and 1 <= row["dnsmos_ovrl"] <= 5 and row["mcd_db"] > 0 and row["mcd_n"] == 1, name
        assert "quality_unavailable" not in row, row.get("quality_unavailable")
    assert s["cer_vs_teacher"] == pytest.approx(s["cer"] / t["cer"])
    assert s["mos_vs_teacher"] == pytest.approx(s["dnsmos_ovrl"] / t["dnsmos_ovrl"])
    assert s["quality_within_10pct"] is (s["cer"] <= 1.1 * t["cer"] and s["dnsmos_ovrl"] >= 0.9 * t["dnsmos_ovrl"])
    assert records[1]["quality"]["cer"] == s["cer"] and records[1]["quality"]["mcd_db"] == s["mcd_db"]
    assert sorted(p.name for p in (out.paths.run_dir / "compare").glob("student_*.wav")) == \
        ["student_0.wav", "student_int8_0.wav", "student_int8_test_0.wav", "student_test_0.wav"]
    model = ParlerTTSForConditionalGeneration.from_pretrained(out.student_dir)  # plain upstream loading
    assert model.config.decoder.num_hidden_layers == 2
    ptok = out.student.prompt_tokenizer
    assert ptok.decode(ptok.encode("ನಮಸ್ಕಾರ"), skip_special_tokens=True) == "ನಮಸ್ಕಾರ"
    rec = read_records(ws, "03_parler_distill")[-1]
    assert rec["status"] == "done" and rec["metrics"]["params_decoder_ratio"] < 1
    assert rec["metrics"]["quality_within_10pct"] is s["quality_within_10pct"]
    assert rec["metrics"]["teacher_cer"] == t["cer"]
    # bitsandbytes copies need CUDA: each one the profile asks for is named with the reason, none is faked
    assert rec["metrics"]["not_measured"].keys() == {"teacher_8bit", "student_8bit", "teacher_4bit", "student_4bit"}
    assert all("need a CUDA GPU; stage 03 ran on cpu" in why for why in rec["metrics"]["not_measured"].values())
    m = rec["metrics"]
    assert (m["processes"], m["batch_size"], m["grad_accum"], m["effective_batch"]) == (1, 4, 1, 4)
    assert_notebook_outputs(rec["outputs"], table, test_row)


def assert_notebook_outputs(out: dict, table: dict, test_row: str) -> None:
    """Everything notebook 03 shows is a file the record lists: tables as JSON, plots as PNG, audio as WAV."""
    for key in ("loss_curve", "comparison_plot"):
        assert Path(out[key]).read_bytes()[:4] == b"\x89PNG", key
    arch = json.loads(Path(out["architecture"]).read_text())
    assert [row["copied from teacher layer"] for row in arch["layers"]] == [0, 3]  # tiny teacher: 4 -> 2 layers
    assert arch["prompt_vocab"]["student"] < arch["prompt_vocab"]["teacher"]
    assert {row["what"] for row in arch["components"]} >= {"decoder_layers", "params_total"}
    cache = json.loads(Path(out["teacher_cache"]).read_text())
    assert cache["facts"]["teacher_cache"] == "memory" and "reason" in cache["summary"]
    summary = json.loads(Path(out["summary"]).read_text())
    assert [r["system"] for r in summary["rows"]] == list(table) and summary["columns"][:2] == ["system", "device"]
    assert summary["rows"][1]["params_total_ratio"] == table["student"]["params_total_ratio"]
    assert len(summary["headline"]) == 2 and "target <= 50 %" in summary["headline"][0]
    samples = read_samples(out["samples"])  # every system speaking every evaluated text, each clip on disk
    texts = table["teacher"]["texts"]
    assert [(r["text"], r["system"]) for r in samples] == [(t, s) for t in texts for s in table]
    assert "recording" not in samples[0] and samples[-1]["text"] == test_row
    audio, sr = sf.read(samples[-1]["recording"])  # the test row's own recording, beside the systems' audio
    assert sr == 44100 and len(audio) > 0
    states = {r["system"]: r["model_state"] for r in samples}
    assert states["teacher"].startswith("teacher") and "distillation steps" in states["student"]
    assert all(r["seconds"] > 0 for r in samples)
    bench = Path(out["bench_records"]).read_text().splitlines()
    assert len(bench) == len(table)


def test_stopped_run_resumes_exactly(kn_data, tmp_path):
    from nbhelpers.distill.pipeline import run

    fast = {"int8": False, "quality": False}  # resume is about training state: no quality models needed
    full = run(_params(run="full", **fast), workspace=Workspace(tmp_path / "a"), dataset=str(kn_data))
    ws = Workspace(tmp_path / "b")
    first = run(_params(run="split", **fast), workspace=ws, dataset=str(kn_data), stop_after=2)
    assert first.status == "resume_needed" and read_records(ws)[-1]["status"] == "resume_needed"
    second = run(_params(run="split", **fast), workspace=ws, dataset=str(kn_data))
    assert second.status == "done"
    a, b = full.student.model.state_dict(), second.student.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in second.history] == pytest.approx([h["loss"] for h in full.history])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_through_the_notebook_launch_path(kn_data, tmp_path):
    """`distill run` with the command line nb.run uses when two GPUs are visible (``nb.stage_argv`` ->
    ``accelerate launch --multi_gpu --num_processes 2``, i.e. torchrun; here on CPU with gloo): both processes
    train, the main process alone exports, compares and records, and the record says how many processes
    trained and the effective batch."""
    from nbhelpers import nb

    ws = tmp_path / "ws"
    settings = {"teacher": "tiny", "max_steps": 3, "eval_every": 3, "save_every": 0, "batch_size": 2,
                "eval_sentences": ["ನಮಸ್ಕಾರ"], "eval_frames": 8, "sample_max_seconds": 0.2,
                "sample_sentences": ["ನಮಸ್ಕಾರ"], "int8": False, "quality": False, "teacher_cache": "off"}
    args = ["--profile", "smoke", "--workspace", str(ws), "--dataset", str(kn_data),
            *[f"--set={k}={json.dumps(v, ensure_ascii=False)}" for k, v in settings.items()]]
    argv = nb.stage_argv("distill", "run", args, processes=2)  # the GPU command line (`--cpu` starts 1 process)
    assert "--multi_gpu" in argv
    argv[argv.index("--multi_gpu"):argv.index("--multi_gpu")] = ["--main_process_port", str(_free_port())]
    env = {**nb.child_env(ws), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, env=env, cwd=str(nb.PROJECT_ROOT), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    records = read_records(ws / "run_log.jsonl", "03_parler_distill")
    assert [r["status"] for r in records] == ["started", "done"]  # one run, written by the main process only
    m = records[1]["metrics"]
    assert (m["processes"], m["batch_size"], m["effective_batch"]) == (2, 2, 4), m
    assert "2 process(es), effective batch 4 (2 per device x 2 x 1 accumulation)" in done.stdout
    assert Path(records[1]["outputs"]["summary"]).is_file() and Path(records[1]["outputs"]["student"]).is_dir()
