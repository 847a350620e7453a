"""The measurement harness: timings, memory sampling, size, and refusal of unmeasured or invented numbers."""

import json
import time

import numpy as np
import pytest

from nbhelpers.measure import harness
from nbhelpers.measure.harness import (
    RecordError,
    append_record,
    measure_synthesis,
    read_records,
    set_metric,
    validate_record,
)


def _tone(seconds_per_char=0.05, sleep=0.02, sr=16_000):
    def synth(text):
        time.sleep(sleep)
        n = int(sr * seconds_per_char * len(text))
        return (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32), sr
    return synth


def test_timings_rtf_and_throughput_are_consistent():
    texts = ["hello there", "a somewhat longer sentence"]
    rec = measure_synthesis("tone", "python", _tone(), texts, warmup=1, repeats=2, progress=False)
    assert rec["schema"] == harness.SCHEMA and rec["n_texts"] == 2 and rec["sample_rate"] == 16_000
    assert rec["audio_s"] == pytest.approx(0.05 * sum(len(t) for t in texts), rel=1e-3)
    assert 0.02 <= rec["latency_s_median"] <= rec["latency_s_p90"] < 1.0
    # overall RTF = total synthesis time / total audio; throughput is its inverse for sequential runs
    assert rec["rtf"] * rec["throughput_audio_s_per_s"] == pytest.approx(1.0, rel=1e-6)
    assert rec["batch_size"] == 1 and rec["threads"] >= 1 and "numpy" in rec["packages"]


def test_batch_fn_measures_batch_throughput():
    synth = _tone(sleep=0.0)
    def batch(texts):
        time.sleep(0.05)
        return [synth(t) for t in texts]
    rec = measure_synthesis("tone", "batch", synth, ["ab", "cd", "ef"], repeats=1, batch_fn=batch, progress=False)
    assert rec["batch_size"] == 3
    assert rec["throughput_texts_per_s"] < 3 / 0.05


def test_peak_rss_sees_a_transient_allocation():
    import mmap

    def synth(text):
        # 160 MiB of fresh anonymous pages, touched and held briefly (malloc could reuse memory a long test session
        # already holds, so the allocation would not show as growth)
        with mmap.mmap(-1, 160 * 2**20) as buf:
            block = np.frombuffer(buf, np.float32)
            block[:] = 1.0
            time.sleep(0.15)
            out = (block[:16_000] * 0.01).copy()
            del block
        return out, 16_000
    rec = measure_synthesis("hog", "python", synth, ["x"], warmup=0, repeats=1, progress=False)
    assert rec["peak_rss_mib"] - rec["rss_before_mib"] > 120


def test_params_and_disk_size_are_measured(tmp_path):
    import torch

    (tmp_path / "w.bin").write_bytes(b"\0" * 2**20)
    rec = measure_synthesis("tone", "torch", _tone(sleep=0), ["abc"], repeats=1, model=torch.nn.Linear(3, 4),
                            disk_paths=[tmp_path], progress=False)
    assert rec["params"] == 16 and rec["disk_mib"] == pytest.approx(1.0)


def test_unmeasured_numbers_are_none_with_reason_on_cpu():
    rec = measure_synthesis("tone", "python", _tone(sleep=0), ["abc"], repeats=1, progress=False)
    for field in ("peak_cuda_mib", "energy_j_per_audio_s", "mean_power_w", "params", "disk_mib"):
        assert rec[field] is None and rec["not_available"][field]


def test_gpu_utilisation_is_sampled_only_through_nvml_and_older_records_stay_valid():
    rec = measure_synthesis("tone", "python", _tone(sleep=0), ["abc"], repeats=1, progress=False)
    for field in harness.LATER_METRIC_FIELDS:
        assert rec[field] is None and "not CUDA" in rec["not_available"][field]
    older = {k: v for k, v in rec.items() if k not in harness.LATER_METRIC_FIELDS}
    older["not_available"] = {k: v for k, v in rec["not_available"].items() if k not in harness.LATER_METRIC_FIELDS}
    validate_record(older)  # written before utilisation was sampled
    with pytest.raises(RecordError, match="gpu_util_pct must be a finite number"):
        validate_record(rec | {"gpu_util_pct": "busy", "not_available": older["not_available"]})
    # a CUDA device named where NVML cannot start (this machine has no NVIDIA driver): None, with NVML's own reason
    on_cuda = measure_synthesis("tone", "python", _tone(sleep=0), ["abc"], repeats=1, progress=False, device="cuda:0")
    assert on_cuda["gpu_util_pct"] is None and on_cuda["not_available"]["gpu_util_pct"].startswith("NVML unavailable")


def test_refuses_invented_or_unexplained_numbers():
    rec = measure_synthesis("tone", "python", _tone(sleep=0), ["abc"], repeats=1, progress=False)
    with pytest.raises(RecordError, match="unknown fields"):
        validate_record(rec | {"mos": 4.5})
    with pytest.raises(RecordError, match="must be measured"):
        validate_record(rec | {"energy_j_per_audio_s": 1.0})  # still listed as not available
    with pytest.raises(RecordError, match="without a reason"):
        validate_record(rec | {"not_available": {}})
    with pytest.raises(RecordError, match="finite number"):
        validate_record(rec | {"rtf": float("nan")})
    with pytest.raises(RecordError, match="unknown quality"):
        validate_record(rec | {"quality": {"naturalness": 5}})
    with pytest.raises(RecordError, match="give the reason"):
        set_metric(dict(rec), "quality.cer", None)
    with pytest.raises(RecordError, match="not a metric"):
        set_metric(dict(rec), "speedup", 2.0)
    with pytest.raises(RecordError, match="missing metric"):
        validate_record({k: v for k, v in rec.items() if k != "rtf"})


def test_bad_synth_output_names_the_system_and_text():
    with pytest.raises(ValueError, match="broken: text #0"):
        measure_synthesis("broken", "x", lambda t: (np.zeros((2, 10), np.float32), 16_000), ["hi"], progress=False)
    with pytest.raises(ValueError, match="NaN"):
        measure_synthesis("broken", "x", lambda t: (np.full(10, np.nan, np.float32), 16_000), ["hi"], progress=False)


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "records.jsonl"
    rec = measure_synthesis("tone", "python", _tone(sleep=0), ["abc"], repeats=1, progress=False)
    set_metric(rec, "quality.cer", 0.25)
    append_record(rec, path)
    with pytest.raises(RecordError):
        append_record(rec | {"fake": 1}, path)
    with path.open("a") as f:
        f.write(json.dumps(rec | {"rtf": None}) + "\n")
    assert [r["quality"]["cer"] for r in read_records(path)] == [0.25]
    with pytest.raises(RecordError, match="records.jsonl:2"):
        read_records(path, strict=True)
