"""The issue-5 quality check on the parler stack: the benchmark's metrics import here (without the Kokoro package),
score real espeak-ng speech, and the student-vs-teacher ratios and the within-10 % flag follow the numbers."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.distill.evaluate import Reference, quality_metrics, quality_vs_teacher
from nbhelpers.measure.quality import asr_token_cap

SENTENCE = "The quick brown fox jumps over the lazy dog."


def test_quality_metrics_import_on_the_parler_stack_without_kokoro():
    code = ("import sys, nbhelpers.measure.quality, faster_whisper, speechmos, jiwer, transformers; "
            "assert transformers.__version__ == '4.46.1', transformers.__version__; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('kokoro', 'misaki') or m.startswith('nbhelpers.kokoro')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("student", "within", "ratios"), [
    ({"cer": 0.22, "dnsmos_ovrl": 2.8}, True, (1.1, 2.8 / 3.0)),      # at the edges: 10 % worse on both
    ({"cer": 0.10, "dnsmos_ovrl": 3.5}, True, (0.5, 3.5 / 3.0)),      # better on both is within
    ({"cer": 0.23, "dnsmos_ovrl": 3.0}, False, (1.15, 1.0)),          # CER 15 % worse
    ({"cer": 0.20, "dnsmos_ovrl": 2.6}, False, (1.0, 2.6 / 3.0)),     # MOS 13 % worse
    ({"cer": None, "dnsmos_ovrl": 3.0}, None, (None, 1.0)),           # CER not measured: no verdict
])
def test_ratios_and_flag_on_known_numbers(student, within, ratios):
    out = quality_vs_teacher(student, {"cer": 0.2, "dnsmos_ovrl": 3.0})
    assert out["quality_within_10pct"] is within
    for key, expected in zip(("cer_vs_teacher", "mos_vs_teacher"), ratios, strict=True):
        assert out[key] == (None if expected is None else pytest.approx(expected))


def test_a_teacher_with_zero_cer_has_no_ratio_but_a_verdict():
    teacher = {"cer": 0.0, "dnsmos_ovrl": 3.0}
    assert quality_vs_teacher({"cer": 0.0, "dnsmos_ovrl": 3.0}, teacher) == \
        {"cer_vs_teacher": None, "mos_vs_teacher": 1.0, "quality_within_10pct": True}
    assert quality_vs_teacher({"cer": 0.05, "dnsmos_ovrl": 3.0}, teacher)["quality_within_10pct"] is False


def test_noisier_student_fails_the_target_on_real_speech(tmp_path):
    wav = tmp_path / "fox.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), SENTENCE], check=True)
    clean, sr = sf.read(wav, dtype="float32")
    noisy = clean + np.random.default_rng(0).normal(0, float(np.sqrt(np.mean(clean**2))), len(clean)).astype(np.float32)
    refs = {SENTENCE: Reference(SENTENCE, "espeak-ng", clean, sr)}
    teacher = quality_metrics([clean], sr, [SENTENCE], language="en", references=refs)
    student = quality_metrics([noisy], sr, [SENTENCE], language="en", references=refs)
    assert "quality_unavailable" not in teacher and "quality_unavailable" not in student
    assert teacher["cer"] < 0.5 and teacher["mcd_db"] == 0.0 and student["mcd_db"] > 3.0
    assert student["cer"] > teacher["cer"] and student["dnsmos_ovrl"] < teacher["dnsmos_ovrl"] - 0.5
    verdict = quality_vs_teacher(student, teacher)
    assert verdict["cer_vs_teacher"] > 1.1 and verdict["mos_vs_teacher"] < 0.9
    assert verdict["quality_within_10pct"] is False
    assert quality_vs_teacher(teacher, teacher) == {"cer_vs_teacher": 1.0, "mos_vs_teacher": 1.0,
                                                    "quality_within_10pct": True}


def test_mcd_without_references_is_unavailable_with_the_reason():
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16_000) / 16_000)).astype(np.float32)
    out = quality_metrics([tone], 16_000, ["x"], language="en", asr_model="no-such-whisper")
    assert out["mcd_db"] is None and "eval_test_rows" in out["quality_unavailable"]["mcd_db"]
    assert out["cer"] is None and "no-such-whisper" in out["quality_unavailable"]["cer"]
    assert out["dnsmos_ovrl"] is not None


def test_asr_token_cap_leaves_room_for_kannada_and_caps_loops():
    assert asr_token_cap("ನಮಸ್ಕಾರ") == 3 * 7 + 8
    assert asr_token_cap("ಕ" * 500) == 160


def test_a_system_given_as_a_loader_is_loaded_in_its_turn_and_shares_its_base_counts():
    """compare() loads a system given as a function only when it is measured (a large quantised copy is never in
    memory beside the others) and a ``<system>_<quantisation>`` row keeps its float base's parameter counts; on a
    CPU the bitsandbytes copies are not loaded at all, each named with the reason."""
    import torch

    from nbhelpers.distill.evaluate import compare, int8_copy
    from nbhelpers.distill.pipeline import quantised_copies
    from nbhelpers.parler.model import ParlerBundle, build_tiny
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    teacher = build_tiny(seed=3)
    loads: list[int] = []

    def int8_teacher() -> ParlerBundle:
        loads.append(len(loads))
        return ParlerBundle(int8_copy(teacher.model), teacher.prompt_tokenizer, teacher.description_tokenizer,
                            "teacher_int8")

    rows = compare({"teacher": teacher, "teacher_int8": int8_teacher}, sentences=["ನಮಸ್ಕಾರ"], description="calm",
                   frames=6, max_seconds=0.5, warmup=0, quality=False)
    assert loads == [0] and list(rows) == ["teacher", "teacher_int8"]
    q, t = rows["teacher_int8"], rows["teacher"]
    assert q["params_total"] == t["params_total"] and q["weights_mib"] < t["weights_mib"]
    assert q["speedup"] > 0 and len(q["audios"]) == 1

    loaders, why = quantised_copies({"teacher": "tiny", "student": "/nowhere"}, load_profile("distill", "smoke"),
                                    torch.device("cpu"), Workspace())
    assert loaders == {} and set(why) == {"teacher_8bit", "student_8bit", "teacher_4bit", "student_4bit"}
    assert quantised_copies({"teacher": "tiny"}, load_profile("distill", "smoke", {"bnb_inference": []}),
                            torch.device("cpu"), Workspace()) == ({}, {})
