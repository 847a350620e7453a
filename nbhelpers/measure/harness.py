"""The one measurement harness every stage uses: warm-up, repeated synthesis, latency/RTF/throughput, peak
memory, size, NVML energy, and a record schema that refuses numbers nobody measured.

A record is a flat dict (schema ``tts-bench/1``, documented in docs/benchmarks.md). Every metric field is
either a measured finite number or ``None`` with a reason in ``record["not_available"][field]``; quality
metrics live in ``record["quality"]`` under the same rule. :func:`validate_record` rejects anything else
(unknown fields, a ``None`` without reason, a number that also claims to be unavailable)."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..records import append_jsonl

SCHEMA = "tts-bench/1"
NA = "not available"

# Fields that describe the run (always present, never None).
CONTEXT_FIELDS = ("schema", "time", "system", "backend", "dtype", "device", "threads", "n_texts", "warmup",
                  "repeats", "sample_rate", "audio_s", "platform", "cpu", "gpu", "python", "packages")
# Measured numbers: a finite number, or None with a reason in not_available.
METRIC_FIELDS = ("latency_s_median", "latency_s_p90", "rtf_median", "rtf_p90", "rtf", "throughput_audio_s_per_s",
                 "throughput_texts_per_s", "batch_size", "rss_before_mib", "peak_rss_mib", "peak_cuda_mib",
                 "params", "disk_mib", "energy_j_per_audio_s", "mean_power_w", "gpu_util_pct", "gpu_mem_util_pct",
                 "sm_clock_mhz")
# Metric fields a record written before they existed may lack (validated like the others when present).
LATER_METRIC_FIELDS = ("gpu_util_pct", "gpu_mem_util_pct", "sm_clock_mhz")
# Quality metrics (in record["quality"]), same rule; filled by nbhelpers.measure.quality / the suite runner.
QUALITY_FIELDS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "cer", "wer", "mcd_db", "f0_rmse_hz",
                  "vuv_error", "pesq_wb", "stoi")
OPTIONAL_FIELDS = ("quality", "not_available", "notes", "language", "stage", "texts_sha256", "run", "measured_on",
                   "quality_source")
ALL_FIELDS = frozenset(CONTEXT_FIELDS + METRIC_FIELDS + OPTIONAL_FIELDS)
PACKAGES = ("torch", "onnxruntime", "numpy", "coqui-tts", "kokoro", "kokoro-onnx", "pocket-tts", "parler-tts",
            "transformers", "piper-tts", "faster-whisper", "ctranslate2", "speechmos", "nvidia-ml-py")

SynthFn = Callable[[str], tuple[np.ndarray, int]]


class RecordError(ValueError):
    """A benchmark record breaks the schema (an unmeasured or invented number, an unknown field)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`RecordError` listing every problem unless the record follows schema tts-bench/1."""
    problems = []
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a dict, got {type(record).__name__}")
    if record.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA!r}, got {record.get('schema')!r}")
    unknown = sorted(set(record) - ALL_FIELDS)
    if unknown:
        problems.append(f"unknown fields {unknown} (not in schema {SCHEMA}; see docs/benchmarks.md)")
    problems += [f"missing context field {k!r}" for k in CONTEXT_FIELDS if record.get(k) is None]
    na = record.get("not_available") or {}
    if not isinstance(na, dict):
        problems.append("not_available must map field -> reason")
        na = {}
    quality = record.get("quality") or {}
    if not isinstance(quality, dict):
        problems.append("quality must be a dict")
        quality = {}
    bad_q = sorted(set(quality) - set(QUALITY_FIELDS))
    if bad_q:
        problems.append(f"unknown quality fields {bad_q}")
    values = {k: record.get(k) for k in METRIC_FIELDS} | {f"quality.{k}": v for k, v in quality.items()}
    for k in METRIC_FIELDS:
        if k not in record and k not in LATER_METRIC_FIELDS:
            problems.append(f"missing metric field {k!r} (a number, or None with a reason in not_available)")
    for key, value in values.items():
        reason = na.get(key)
        if value is None:
            if key in record or key.startswith("quality."):
                if not (isinstance(reason, str) and reason.strip()):
                    problems.append(f"{key} is None without a reason in not_available")
        elif not _is_number(value):
            problems.append(f"{key} must be a finite number or None, got {value!r}")
        elif reason is not None:
            problems.append(f"{key} = {value} but not_available says {reason!r}: a number must be measured")
    measured_on = record.get("measured_on")
    if measured_on is not None and not (isinstance(measured_on, str) and measured_on.strip()):
        problems.append("measured_on must say where speed/memory were measured (a non-empty string)")
    sources = record.get("quality_source") or {}
    if not isinstance(sources, dict) or not all(isinstance(v, str) and v.strip() for v in sources.values()):
        problems.append("quality_source must map quality metric -> where it was computed")
    else:
        problems += [f"quality_source names {k!r}, which has no number in quality" for k in sources
                     if not _is_number(quality.get(k))]
    allowed_na = set(METRIC_FIELDS) | {f"quality.{k}" for k in QUALITY_FIELDS}
    stray = sorted(set(na) - allowed_na)
    if stray:
        problems.append(f"not_available names unknown fields {stray}")
    if problems:
        name = f"{record.get('system')}/{record.get('backend')}/{record.get('dtype')}"
        raise RecordError(f"benchmark record {name} rejected: " + "; ".join(problems))
    return record


def set_metric(record: dict[str, Any], field: str, value: float | None, reason: str | None = None) -> None:
    """Store a measured number, or None with the reason it was not measured (never both, never neither)."""
    quality = field.startswith("quality.")
    name = field.split(".", 1)[1] if quality else field
    if (name not in QUALITY_FIELDS) if quality else (field not in METRIC_FIELDS):
        raise RecordError(f"{field!r} is not a metric of schema {SCHEMA}")
    na = record.setdefault("not_available", {})
    target = record.setdefault("quality", {}) if quality else record
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        if not reason:
            raise RecordError(f"{field} was not measured: give the reason, never a made-up number")
        target[name] = None
        na[field] = reason if value is None else f"{reason} (measurement gave {value})"
    else:
        target[name] = float(value) if not isinstance(value, int) else value
        na.pop(field, None)


def append_record(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Validate and append one record as a JSON line (file-locked), creating the file if needed."""
    validate_record(record)
    return append_jsonl(path, record)


def read_records(path: str | os.PathLike, *, strict: bool = False) -> list[dict[str, Any]]:
    """Records of a JSONL file; invalid lines are skipped (or raise with ``strict``), naming file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(validate_record(json.loads(line)))
        except (ValueError, RecordError) as e:
            if strict:
                raise RecordError(f"{path}:{i}: {e}") from e
    return out


def package_versions() -> dict[str, str]:
    """Versions of the packages that change synthesis speed (absent ones left out)."""
    from ..env import package_versions as versions

    return {k: v for k, v in versions(PACKAGES).items() if v != "-"}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _threads() -> int:
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def _gpu_index(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    return int(device.split(":", 1)[1]) if ":" in device else 0


def count_parameters(model: Any) -> tuple[int | None, str | None]:
    """Parameter count of a torch module, an ONNX file/ModelProto, or anything with ``num_parameters``."""
    if model is None:
        return None, "no model object given to the harness"
    if hasattr(model, "parameters") and callable(model.parameters):
        return int(sum(p.numel() for p in model.parameters())), None
    if isinstance(model, (str, os.PathLike)) and str(model).endswith(".onnx") or type(model).__name__ == "ModelProto":
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(model), load_external_data=False) if not type(model).__name__ == "ModelProto" else model
        return int(sum(int(np.prod(numpy_helper.to_array(t).shape)) for t in proto.graph.initializer)), None
    if isinstance(getattr(model, "num_parameters", None), int):
        return model.num_parameters, None
    return None, f"cannot count parameters of a {type(model).__name__}"


def disk_size(paths: Iterable[str | os.PathLike]) -> tuple[float | None, str | None]:
    """Total MiB of files (folders walked); None with a reason when nothing was given or a path is missing."""
    paths = [Path(p) for p in paths]
    if not paths:
        return None, "no disk_paths given"
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return None, f"missing on disk: {missing}"
    total = 0
    for p in paths:
        total += p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total / 2**20, None


class Sampler:
    """Background thread sampling process-tree RSS and (on CUDA) NVML power, energy, utilisation (GPU busy %,
    memory-controller busy %) and SM clock while a block runs."""

    def __init__(self, gpu: int | None, interval: float = 0.02):
        import psutil

        self.proc, self.interval, self.gpu = psutil.Process(), interval, gpu
        self.peak_rss = 0
        self.power_w: list[tuple[float, float]] = []
        self.utilisation: list[tuple[float, float, float]] = []  # (gpu %, memory %, SM MHz)
        self.energy_mj: tuple[int, int] | None = None
        self.nvml_reason: str | None = None
        self._handle = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                pass
        return total

    def _open_nvml(self) -> None:
        if self.gpu is None:
            self.nvml_reason = "device is not CUDA (NVML is only read for NVIDIA GPUs)"
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.gpu)
        except Exception as e:  # noqa: BLE001 - any NVML failure means: no energy figure
            self.nvml_reason = f"NVML unavailable: {e}"

    def _energy(self) -> int | None:
        import pynvml

        try:
            return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001 - pre-Volta GPUs lack the counter: integrate power instead
            return None

    def _run(self) -> None:
        pynvml = sys.modules.get("pynvml") if self._handle is not None else None
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._rss())
            if self._handle is not None:
                try:
                    self.power_w.append((time.perf_counter(), pynvml.nvmlDeviceGetPowerUsage(self._handle) / 1000))
                    rates = pynvml.nvmlDeviceGetUtilizationRates(self._handle)
                    clock = pynvml.nvmlDeviceGetClockInfo(self._handle, pynvml.NVML_CLOCK_SM)
                    self.utilisation.append((float(rates.gpu), float(rates.memory), float(clock)))
                except Exception:  # noqa: BLE001
                    pass
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._open_nvml()
        self.peak_rss = self._rss()
        self._e0 = self._energy() if self._handle is not None else None
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, self._rss())
        self.seconds = time.perf_counter() - self._t0
        if self._handle is not None:
            e1 = self._energy()
            if self._e0 is not None and e1 is not None and e1 > self._e0:
                self.energy_mj = (self._e0, e1)

    def energy_joules(self, min_seconds: float) -> tuple[float | None, float | None, str | None]:
        """(joules, mean watts, reason if unavailable) over the sampled window. NVML's energy counter and power
        reading are updated/averaged over tens to hundreds of milliseconds, so a window shorter than
        ``min_seconds`` gives no figure rather than a wrong one."""
        if self._handle is None:
            return None, None, self.nvml_reason
        if self.seconds < min_seconds:
            return None, None, (f"energy window {self.seconds:.2f} s is shorter than {min_seconds} s (NVML updates "
                                "too coarsely for shorter runs)")
        if self.energy_mj is not None:
            joules = (self.energy_mj[1] - self.energy_mj[0]) / 1000
            return joules, joules / self.seconds, None
        if len(self.power_w) >= 10:
            t = np.array([p[0] for p in self.power_w])
            w = np.array([p[1] for p in self.power_w])
            joules = float(np.trapezoid(w, t)) if hasattr(np, "trapezoid") else float(np.trapz(w, t))
            return joules, float(w.mean()), None
        return None, None, "too few NVML power samples"


    def training_metrics(self) -> dict[str, Any]:
        """What a training run's record gets: mean GPU/memory-controller busy %, SM clock and the peak RSS of the
        process tree so far, with the reason when the GPU figures are not available."""
        means, reason = self.utilisation_means()
        out: dict[str, Any] = {**means, "peak_rss_mib": round(max(self.peak_rss, self._rss()) / 2**20, 1)}
        out["utilisation_note"] = reason or (f"GPU {self.gpu}, sampled every {self.interval:g} s by the main process; "
                                             f"{len(self.utilisation)} samples")
        return out

    def utilisation_means(self) -> tuple[dict[str, float | None], str | None]:
        """Mean GPU busy %, memory-controller busy % and SM clock over the window, or Nones and the reason."""
        names = ("gpu_util_pct", "gpu_mem_util_pct", "sm_clock_mhz")
        if self._handle is None:
            return dict.fromkeys(names), self.nvml_reason
        if not self.utilisation:
            return dict.fromkeys(names), "NVML gave no utilisation samples in this window"
        means = np.array(list(self.utilisation)).mean(axis=0)  # a copy: the thread may still be appending
        return dict(zip(names, (float(m) for m in means), strict=True)), None


def _check_audio(out: Any, system: str, index: int, text: str) -> tuple[np.ndarray, int]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{system}: synth_fn must return (audio, sample_rate), got {type(out).__name__} "
                        f"for text #{index} {text[:40]!r}")
    audio, sr = out
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.size == 0 or not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{system}: text #{index} {text[:40]!r} gave audio of shape {audio.shape} dtype "
                         f"{audio.dtype}; need non-empty 1-D float mono")
    if not np.isfinite(audio).all():
        raise ValueError(f"{system}: text #{index} {text[:40]!r} gave NaN/inf samples")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ValueError(f"{system}: sample rate must be a positive int, got {sr!r}")
    return audio.astype(np.float32, copy=False), int(sr)


def _sync(device: str) -> None:
    if device.startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            torch.cuda.synchronize()


def _context(system: str, backend: str, dtype: str, device: str, threads: int, n_texts: int, warmup: int,
             repeats: int, sample_rate: int, audio_s: float, language: str | None, notes: str) -> dict[str, Any]:
    """The context fields of a record, describing this machine and process (``gpu`` 'none' until set)."""
    from ..env import detect_platform

    rec: dict[str, Any] = {
        "schema": SCHEMA, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "system": system, "backend": backend,
        "dtype": dtype, "device": device, "threads": threads, "n_texts": n_texts, "warmup": warmup,
        "repeats": repeats, "sample_rate": sample_rate, "audio_s": audio_s, "platform": detect_platform(),
        "cpu": _cpu_name(), "gpu": "none", "python": sys.version.split()[0], "packages": package_versions(),
        "not_available": {}, "quality": {},
    }
    if language:
        rec["language"] = language
    if notes:
        rec["notes"] = notes
    return rec


def untimed_record(system: str, backend: str, *, dtype: str, device: str, n_texts: int, sample_rate: int,
                   audio_s: float, reason: str, language: str | None = None, notes: str = "") -> dict[str, Any]:
    """A record for audio another process synthesised without timing it (e.g. a training stage's samples,
    scored later): every speed, memory and size metric is None with ``reason``; the context fields describe
    the machine that writes the record, which is where its quality metrics get computed."""
    rec = _context(system, backend, dtype, device, _threads(), n_texts, 0, 0, sample_rate, audio_s, language, notes)
    for name in METRIC_FIELDS:
        set_metric(rec, name, None, reason)
    return rec


def measure_synthesis(system: str, backend: str, synth_fn: SynthFn, texts: Sequence[str], *,
                      dtype: str = "float32", device: str = "cpu", warmup: int = 1, repeats: int = 3,
                      model: Any = None, disk_paths: Iterable[str | os.PathLike] = (), threads: int | None = None,
                      batch_fn: Callable[[list[str]], list[tuple[np.ndarray, int]]] | None = None,
                      collect: list | None = None, language: str | None = None, notes: str = "",
                      progress: bool = True, energy_seconds: float = 3.0) -> dict[str, Any]:
    """Benchmark ``synth_fn(text) -> (float32 mono, sr)`` over ``texts``: ``warmup`` untimed calls, then
    ``repeats`` timed passes; returns a validated tts-bench/1 record (append it with :func:`append_record`).

    ``batch_fn(texts) -> [(audio, sr)]`` (optional) measures batch throughput; without it throughput is that of
    the sequential passes. ``collect`` (a list) receives ``(text, audio, sr)`` from the first timed pass, for
    quality metrics. ``threads`` overrides the recorded thread count (e.g. ONNX Runtime intra-op threads).
    On CUDA, energy is measured in a separate sustained pass that cycles the texts for ``energy_seconds``
    (NVML board energy over that pass / seconds of audio produced in it; idle power is not subtracted)."""
    from tqdm.auto import tqdm

    from ..env import gpu_info

    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError(f"{system}: texts must be a non-empty list of non-empty strings")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"{system}: repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    gpu = _gpu_index(device)
    cuda_torch = gpu is not None and "torch" in sys.modules and sys.modules["torch"].cuda.is_available()
    for i in range(warmup):
        _check_audio(synth_fn(texts[i % len(texts)]), system, i % len(texts), texts[i % len(texts)])
    _sync(device)
    if cuda_torch:
        sys.modules["torch"].cuda.reset_peak_memory_stats(gpu)
    import psutil

    rss_before = psutil.Process().memory_info().rss
    latencies, rtfs, durations, sr_seen = [], [], [], set()
    bar = tqdm(total=repeats * len(texts), desc=f"{system}/{backend}", unit="utt", disable=not progress, leave=False)
    with Sampler(gpu) as sampler:
        for r in range(repeats):
            for i, text in enumerate(texts):
                t0 = time.perf_counter()
                out = synth_fn(text)
                _sync(device)
                dt = time.perf_counter() - t0
                audio, sr = _check_audio(out, system, i, text)
                dur = audio.size / sr
                latencies.append(dt)
                rtfs.append(dt / dur)
                durations.append(dur)
                sr_seen.add(sr)
                if r == 0 and collect is not None:
                    collect.append((text, audio, sr))
                bar.update()
        batch = None
        if batch_fn is not None:
            t0 = time.perf_counter()
            outs = batch_fn(texts)
            _sync(device)
            batch_dt = time.perf_counter() - t0
            batch_audio = sum(_check_audio(o, system, i, texts[i])[0].size / o[1] for i, o in enumerate(outs))
            batch = (batch_dt, batch_audio)
    bar.close()
    if len(sr_seen) != 1:
        raise ValueError(f"{system}: synth_fn returned several sample rates {sorted(sr_seen)}")
    lat = np.array(latencies)
    rec = _context(system, backend, dtype, device, int(threads if threads is not None else _threads()), len(texts),
                   warmup, repeats, sr_seen.pop(), float(sum(durations[: len(texts)])), language, notes)
    rec["gpu"] = (gpu_info()[gpu].name if cuda_torch and gpu < len(gpu_info()) else
                  ("none" if gpu is None else f"cuda:{gpu} (not visible to torch)"))
    set_metric(rec, "latency_s_median", float(np.median(lat)))
    set_metric(rec, "latency_s_p90", float(np.percentile(lat, 90)))
    set_metric(rec, "rtf_median", float(np.median(rtfs)))
    set_metric(rec, "rtf_p90", float(np.percentile(rtfs, 90)))
    set_metric(rec, "rtf", float(lat.sum() / sum(durations)))
    if batch is not None:
        set_metric(rec, "throughput_audio_s_per_s", batch[1] / batch[0])
        set_metric(rec, "throughput_texts_per_s", len(texts) / batch[0])
        set_metric(rec, "batch_size", len(texts))
    else:
        set_metric(rec, "throughput_audio_s_per_s", sum(durations) / lat.sum())
        set_metric(rec, "throughput_texts_per_s", len(lat) / lat.sum())
        set_metric(rec, "batch_size", 1)
    set_metric(rec, "rss_before_mib", rss_before / 2**20)
    set_metric(rec, "peak_rss_mib", sampler.peak_rss / 2**20)
    if cuda_torch:
        set_metric(rec, "peak_cuda_mib", sys.modules["torch"].cuda.max_memory_allocated(gpu) / 2**20)
    else:
        set_metric(rec, "peak_cuda_mib", None, "device is not CUDA" if gpu is None else
                   "CUDA device but torch cannot see it (an ONNX Runtime provider allocates outside torch)")
    utilisation, reason = sampler.utilisation_means()
    for name, value in utilisation.items():
        set_metric(rec, name, value, reason)
    params, reason = count_parameters(model)
    set_metric(rec, "params", params, reason)
    mib, reason = disk_size(disk_paths)
    set_metric(rec, "disk_mib", mib, reason)
    joules, watts, reason = None, None, sampler.nvml_reason
    if gpu is not None and sampler.nvml_reason is None:
        energy_audio, i = 0.0, 0
        with Sampler(gpu) as energy:
            t_end = time.perf_counter() + energy_seconds
            while time.perf_counter() < t_end:
                audio, sr = _check_audio(synth_fn(texts[i % len(texts)]), system, i % len(texts), texts[i % len(texts)])
                _sync(device)
                energy_audio += audio.size / sr
                i += 1
        joules, watts, reason = energy.energy_joules(min_seconds=min(1.0, energy_seconds))
    set_metric(rec, "energy_j_per_audio_s", None if joules is None else joules / energy_audio, reason)
    set_metric(rec, "mean_power_w", watts, reason)
    return validate_record(rec)
