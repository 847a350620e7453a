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
    from nbhelpers.distill.pipeline import params_for

    return params_for("smoke", {"teacher": "tiny", "max_steps": 4, "eval_every": 2, "save_every": 2,
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
    from nbhelpers.bench.harness import read_records as bench_records
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
