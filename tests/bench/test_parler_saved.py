"""Parler in the suite benchmark without the parler stack: stage 03's teacher/student rows come from its harness
records and saved clips (speed/memory as measured there, quality scored here unless 03 scored it); with stage
02 alone, its after-training samples. The clips are real speech (espeak-ng Kannada) so every metric is computed."""

import json

import numpy as np
import pytest

from nbhelpers.bench import systems
from nbhelpers.bench.run import SCORED_HERE, run_benchmark
from nbhelpers.measure.harness import append_record, measure_synthesis, read_records
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import append_stage_record
from nbhelpers.samples import sample_row, write_samples

EVAL = load_profile("distill", "smoke")["eval_sentences"]
SAMPLES = load_profile("parler", "smoke")["sample_sentences"]
PARLER_STACK = {"parler-tts": "0.2.3", "transformers": "4.46.1", "torch": "2.8.0"}


TEST_ROW = "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ."  # a test-split row 03 also speaks (compare/<name>_test_0.wav)


def fake_distill_run(ws, say, *, in_record=None, in_row=None, metrics=None):
    """A stage-03 run folder as nbhelpers.distill.pipeline writes it: compare/<name>_<i>.wav (eval sentences) and
    <name>_test_<i>.wav (test rows), comparison.json rows with their ``texts``, bench_records.jsonl (records
    measured on the 'parler stack'), and the stage record. ``in_record`` / ``in_row``: quality figures 03
    scored itself, per system, stored in its harness record / in its comparison row; ``metrics``: the record's."""
    import soundfile as sf

    from nbhelpers.measure.harness import set_metric

    run_dir = ws.stage_dir("distill", "run")
    texts = [*EVAL, TEST_ROW]
    speed = {"teacher": 150, "student": 190, "student_int8": 230}
    table, wavs = {}, []
    for name, wpm in speed.items():
        names = [f"{name}_{i}" for i in range(len(EVAL))] + [f"{name}_test_0"]
        clips = [say(run_dir / "compare" / f"{n}.wav", t, "kn", wpm) for n, t in zip(names, texts, strict=True)]
        wavs += clips
        audio = {t: sf.read(c, dtype="float32") for t, c in zip(texts, clips, strict=True)}
        rec = measure_synthesis(name, "parler-tts", lambda t, a=audio: a[t], texts, warmup=0, repeats=1,
                                language="kn", notes="fixed length", progress=False)
        rec["packages"] = PARLER_STACK
        for k, v in (in_record or {}).get(name, {}).items():
            set_metric(rec, f"quality.{k}", v)
        append_record({**rec, "stage": "03_parler_distill"}, run_dir / "bench_records.jsonl")
        table[name] = {"latency_s": rec["latency_s_median"], "rtf": rec["rtf"], "texts": texts,
                       "synthesis_path": "cpu, float32, sdpa attention, voice presets", **(in_row or {}).get(name, {})}
    (run_dir / "comparison.json").write_text(json.dumps(table))
    append_stage_record("03_parler_distill", profile="smoke", workspace=ws,
                        outputs={"run_dir": str(run_dir), "comparison": str(run_dir / "comparison.json"),
                                 "wavs": [str(w) for w in wavs]}, metrics=metrics or {})
    return run_dir


def test_distill_rows_keep_03_timings_and_are_scored_here(say, dataset_with):
    ws = Workspace()
    # the test split's first row is the first eval sentence, spoken by another espeak-ng voice: an MCD reference
    dataset_with(ws, "kn_smoke", [("test", EVAL[0], say(ws.root / "ref" / "r0.wav", EVAL[0], "kn+m3"))])
    run_dir = fake_distill_run(ws, say, in_record={"teacher": {"cer": 0.4242, "wer": 0.5}},
                               in_row={"student_int8": {"cer": 0.3131}})
    stage_records = {r["system"]: r for r in read_records(run_dir / "bench_records.jsonl")}

    summary = run_benchmark("smoke", systems=["parler"], overrides={"languages": ["kn"]})
    assert summary["failures"] == {} and summary["records"] == 3
    rows = {(r["system"], r["backend"]): r for r in read_records(summary["records_path"], strict=True)}
    assert set(rows) == {("parler-teacher", "parler-tts"), ("parler-student", "parler-tts"),
                         ("parler-student", "parler-tts-int8-dynamic")}
    teacher = rows["parler-teacher", "parler-tts"]
    student = rows["parler-student", "parler-tts"]
    int8 = rows["parler-student", "parler-tts-int8-dynamic"]
    # speed and memory are 03's own figures, not re-timed here
    for row, name in ((teacher, "teacher"), (int8, "student_int8")):
        for k in ("rtf", "latency_s_median", "peak_rss_mib", "audio_s", "n_texts"):
            assert row[k] == stage_records[name][k]
    assert int8["dtype"] == "int8" and "student_int8" in int8["notes"]
    assert teacher["measured_on"].startswith("03_parler_distill on the parler stack (parler-tts 0.2.3")
    assert teacher["measured_on"].endswith("), cpu, float32, sdpa attention, voice presets")  # 03's ParlerSynth path
    # what 03 scored is used as is (ASR not rerun for the teacher); everything else is scored here from the WAVs
    q, src = teacher["quality"], teacher["quality_source"]
    assert (q["cer"], q["wer"]) == (0.4242, 0.5) and src["cer"] == src["wer"] == "03_parler_distill"
    assert src["dnsmos_ovrl"] == src["mcd_db"] == SCORED_HERE
    assert q["dnsmos_ovrl"] > 1.5 and 0 < q["mcd_db"] < 30
    assert int8["quality"]["cer"] == 0.3131 and int8["quality_source"]["cer"] == "03_parler_distill"
    assert int8["quality"]["wer"] >= 0 and int8["quality_source"]["wer"] == SCORED_HERE
    assert student["quality"]["cer"] >= 0 and student["quality_source"]["cer"] == SCORED_HERE
    assert "pesq_wb" not in student["quality_source"]  # None (with its reason): no source to name

    md = open(summary["report_md"], encoding="utf-8").read()
    assert "## Numbers from other stages (saved audio)" in md
    assert "cer, wer by 03_parler_distill" in md and f"by {SCORED_HERE}" in md
    row = next(line for line in md.splitlines() if line.startswith("| parler-teacher"))
    assert row.rstrip(" |").endswith("03_parler_distill")  # the 'timed in' column
    parler = [g for g in summary["gallery"] if g["system"].startswith("parler-")]
    assert {g["text"] for g in parler} == {EVAL[0]}
    assert all(g["path"].startswith(str(ws.stage_dir("bench") / "gallery")) for g in parler)
    key = json.loads(open(summary["listening_page"].replace("index.html", "key.json")).read())["items"]
    assert sorted(v["system"] for v in key.values()) == ["parler-student", "parler-teacher"]


def test_distill_outputs_that_do_not_match_are_skipped_with_the_reason(say):
    ws = Workspace()
    params = load_profile("bench", "smoke")
    fake_distill_run(ws, say)
    run_dir = fake_distill_run(ws, say)  # a re-run appends its records
    newest = read_records(run_dir / "bench_records.jsonl")[-3:]
    variants, _ = systems.discover(ws, params, ["parler"])
    assert [v.saved().record for v in variants] == newest
    (run_dir / "compare" / "student_test_0.wav").unlink()
    variants, skipped = systems.discover(ws, params, ["parler"])
    assert {v.label for v in variants} == {"parler-teacher / parler-tts / float32 / cpu",
                                           "parler-student / parler-tts-int8-dynamic / int8 / cpu"}
    (run_dir / "comparison.json").unlink()
    variants, skipped = systems.discover(ws, params, ["parler"])
    assert not variants and "comparison.json" in skipped["parler"]
    (run_dir / "comparison.json").write_text("{}")
    variants, skipped = systems.discover(ws, {**params, "languages": ["en"]}, ["parler"])
    assert not variants and "'kn' is not among the profile's languages" in skipped["parler"]


def test_quantised_systems_03_could_not_load_are_rows_marked_not_available(say, dataset_with):
    """Stage 03 on a machine without CUDA cannot load bitsandbytes 8-/4-bit copies: its record lists them under
    ``not_measured``, and 06 shows each as its own not-available row (the reason kept), beside the measured ones."""
    ws = Workspace()
    dataset_with(ws, "kn_smoke", [("test", EVAL[0], say(ws.root / "ref" / "r0.wav", EVAL[0], "kn+m3"))])
    why = "bitsandbytes 8bit weights need a CUDA GPU; stage 03 ran on cpu"
    fake_distill_run(ws, say, metrics={"not_measured": {"teacher_8bit": why, "student_4bit": why.replace("8", "4")}})
    variants, skipped = systems.discover(ws, load_profile("bench", "smoke"), ["parler"])
    assert len(variants) == 3 and all(v.saved is not None for v in variants)
    assert skipped == {"parler-teacher / parler-tts-bnb-8bit / int8 / cuda": why,
                       "parler-student / parler-tts-bnb-4bit / nf4 / cuda": why.replace("8", "4")}

    summary = run_benchmark("smoke", systems=["parler"], overrides={"languages": ["kn"], "asr": False, "dnsmos": False})
    assert summary["records"] == 3 and summary["skipped"] == skipped
    md = open(summary["report_md"], encoding="utf-8").read()
    assert "parler-student / parler-tts-bnb-4bit / nf4 / cuda" in md and why.replace("8", "4") in md


def test_stage_02_alone_gives_its_samples_untimed(say):
    from nbhelpers.bench.run import measure_variant

    ws = Workspace()
    params = {**load_profile("bench", "smoke"), "languages": ["kn"], "asr": False}
    samples = ws.stage_dir("parler", "run", "export", "samples")
    wavs = [say(samples / f"after_{i}.wav", t, "kn") for i, t in enumerate(SAMPLES)]
    before = say(samples / "before_0.wav", SAMPLES[0], "en-us")
    rows = [sample_row(SAMPLES[0], before, "before fine-tuning: random weights")]
    rows += [sample_row(t, w, "after 12 steps fine-tuned") for t, w in zip(SAMPLES, wavs, strict=True)]
    index = write_samples(rows, samples)
    append_stage_record("02_parler_finetune", profile="smoke", workspace=ws,
                        outputs={"samples": "/kaggle/working/elsewhere/samples.jsonl"})  # another machine's path
    variants, skipped = systems.discover(ws, params, ["parler"])
    assert not variants and "names no samples.jsonl" in skipped["parler"]
    append_stage_record("02_parler_finetune", profile="smoke", workspace=ws, outputs={"samples": index})
    variants, skipped = systems.discover(ws, params, ["parler"])
    assert [v.label for v in variants] == ["parler-finetuned / parler-tts / float32 / cpu"]
    gallery, failures = measure_variant(variants[0], {}, params, ws.stage_dir("bench"), "r1")
    assert failures == {}
    rec = read_records(ws.stage_dir("bench") / "records.jsonl", strict=True)[0]
    assert rec["rtf"] is None and "without timing" in rec["not_available"]["rtf"]
    assert rec["measured_on"].startswith("not timed") and rec["quality"]["dnsmos_ovrl"] > 1.5
    assert rec["quality"]["cer"] is None and "disabled" in rec["not_available"]["quality.cer"]
    assert gallery[0]["text"] == SAMPLES[0]
    import soundfile as sf
    assert np.allclose(sf.read(gallery[0]["path"])[0], sf.read(wavs[0])[0], atol=1e-4)

    wavs[-1].unlink()
    variants, skipped = systems.discover(ws, params, ["parler"])
    assert not variants and f"{wavs[-1]} is missing" in skipped["parler"]


@pytest.mark.parametrize("field,value", [("measured_on", ""), ("quality_source", {"cer": "03"})])
def test_provenance_fields_are_validated(field, value, speech):
    from nbhelpers.measure.harness import RecordError, validate_record

    audio, sr, text = speech
    rec = measure_synthesis("x", "y", lambda t: (audio, sr), [text], repeats=1, progress=False)
    rec[field] = value  # an empty place, or a source for a metric that has no number
    with pytest.raises(RecordError, match=field):
        validate_record(rec)
