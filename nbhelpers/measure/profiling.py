"""Where the time goes: N calls of a training step or a synthesis under ``torch.profiler`` (CPU, and CUDA kernels
when a GPU runs), saved as a Chrome trace (open it in chrome://tracing or https://ui.perfetto.dev) and a table of
the operators that took the most self time, which notebooks show."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = 15


def profile_calls(fn: Callable[[int], Any], n: int, out_dir: str | os.PathLike, label: str, *,
                  warmup: int = 1) -> dict[str, Any]:
    """Call ``fn(i)`` ``warmup`` times untraced, then ``n`` times under the profiler; write
    ``<out_dir>/<label>.trace.json`` and ``<label>.top.json`` (atomically) and return the summary (see
    :func:`_summary`)."""
    import torch
    from torch.profiler import profile

    if n < 1:
        raise ValueError(f"profile {label}: n must be >= 1, got {n}")
    for i in range(warmup):
        fn(i)
    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    with profile(activities=_activities(), record_shapes=False) as prof:
        for i in range(n):
            with torch.profiler.record_function(f"{label}#{i}"):
                fn(i)
            if cuda:
                torch.cuda.synchronize()
    return _summary(prof, label, n, warmup, (time.perf_counter() - started) * 1000, out_dir)


def record_fields(summary: dict[str, Any] | None) -> dict[str, Any]:
    """What a stage record keeps of a profile: the steps traced and the two files (the Chrome trace, the top
    operators' JSON that notebooks show with ``nb.profile``); nothing when nothing was profiled."""
    if not summary:
        return {}
    return {"profiled_steps": summary["calls"], "profile_trace": summary["trace"], "profile_table": summary["table"]}


class StepProfiler:
    """Profiles ``n`` steps of a training loop that calls :meth:`step` after each of its steps: the first
    ``warmup`` steps run untraced (allocations, lazy initialisation), the next ``n`` under ``torch.profiler``, then
    the trace and the top operators are written as :func:`profile_calls` writes them and kept in :attr:`summary`.
    ``n = 0`` profiles nothing. A loop that ends before the ``n`` steps are traced writes what it has in
    :meth:`close`."""

    def __init__(self, n: int, out_dir: str | os.PathLike, label: str, *, warmup: int = 1):
        self.n, self.out_dir, self.label, self.warmup = n, out_dir, label, warmup
        self.steps, self.summary = 0, None
        self._prof: Any = None
        self._started = 0.0

    def step(self) -> None:
        """Call after each step of the loop."""
        if self.n <= 0 or self.summary is not None:  # off, or done: nothing on the loop's hot path
            return
        import torch

        self.steps += 1
        if self._prof is None and self.steps == self.warmup:
            from torch.profiler import profile

            self._prof = profile(activities=_activities(), record_shapes=False)
            self._prof.start()
            self._started = time.perf_counter()
        elif self._prof is not None and self.steps >= self.warmup + self.n:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.close()

    def close(self) -> dict[str, Any] | None:
        """Stop tracing (if it runs) and write what was traced; returns the summary (None: nothing traced)."""
        if self._prof is not None and self.summary is None:
            self._prof.stop()
            traced = self.steps - self.warmup
            if traced > 0:
                self.summary = _summary(self._prof, self.label, traced, self.warmup,
                                        (time.perf_counter() - self._started) * 1000, self.out_dir)
            self._prof = None
        return self.summary


def _activities() -> list[Any]:
    import torch
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])


def _summary(prof: Any, label: str, n: int, warmup: int, wall_ms: float, out_dir: str | os.PathLike
             ) -> dict[str, Any]:
    """Write ``<out_dir>/<label>.trace.json`` (Chrome trace) and ``<label>.top.json`` atomically and return the
    summary: the device kinds traced, wall and profiled totals (and on CPU the share of time outside PyTorch
    operators), and the top operators by self time (CUDA time where CUDA ran)."""
    import torch

    cuda = torch.cuda.is_available()
    events = [e for e in prof.key_averages() if not e.key.startswith(f"{label}#")]
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    total = sum(getattr(e, key) for e in events) or 1
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:TOP]
    rows = [{"operator": e.key, "calls": int(e.count), "self ms": round(getattr(e, key) / 1000, 3),
             "total ms": round((e.device_time_total if cuda else e.cpu_time_total) / 1000, 3),
             "share %": round(100 * getattr(e, key) / total, 1)} for e in top]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace = out / f"{label}.trace.json"
    tmp = trace.with_name(f".{trace.name}.tmp-{os.getpid()}")
    prof.export_chrome_trace(str(tmp))
    tmp.replace(trace)
    summary = {"label": label, "calls": n, "warmup": warmup, "devices": ["cpu"] + (["cuda"] if cuda else []),
               "time_basis": "self CUDA time" if cuda else "self CPU time",
               "wall_ms": round(wall_ms, 3), "profiled_ms": round(total / 1000, 3),
               # CPU: the share of wall time spent outside PyTorch operators (ONNX Runtime, espeak-ng, Python)
               "outside_torch_ops_pct": None if cuda else round(max(0.0, 100 * (1 - total / 1000 / wall_ms)), 1),
               "trace": str(trace), "table": str(out / f"{label}.top.json"), "top": rows}
    table = out / f"{label}.top.json"
    tmp = table.with_name(f".{table.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    tmp.replace(table)
    return summary
