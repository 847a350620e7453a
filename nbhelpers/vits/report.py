"""What notebook 04 shows, written by the stage into the workspace: the pre-flight report (JSON), how a training
session ended (``session.json`` in the run folder, which ``finish`` reads back in a later process) and the
PyTorch / ONNX Runtime / int8 CPU timing table (JSON rows and the rendered Markdown)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..records import write_json

PREFLIGHT_FILE = "preflight.json"
SESSION_FILE = "session.json"
TIMING_JSON = "timing.json"
TIMING_MARKDOWN = "timing.md"


def write_text(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def preflight_summary(report: Any, prep: Any = None) -> dict[str, Any]:
    """The checks (name, ok, message) and, when pre-flight passed, where the run starts from and its size."""
    out: dict[str, Any] = {"ok": report.ok,
                           "checks": [{"check": c.name, "ok": c.ok, "message": c.message} for c in report.checks]}
    if prep is not None:
        out.update({
            "start": prep.params["start"], "continuing": str(prep.continue_dir) if prep.continue_dir else None,
            "restore_from": str(prep.restore_path) if prep.restore_path else None,
            "dataset": str(prep.dataset_dir), "train_rows": len(prep.train_rows), "validation_rows": len(prep.val_rows),
            "parameters_millions": round(sum(p.numel() for p in prep.model.parameters()) / 1e6, 2),
        })
    return out


def write_preflight(workspace: Any, report: Any, prep: Any = None) -> Path:
    """``<workspace>/vits/preflight.json`` (also written when a check failed, with the failures)."""
    return write_json(workspace.stage_dir("vits") / PREFLIGHT_FILE, preflight_summary(report, prep))


def session_dict(result: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"status": result.status, "reason": result.reason, "run_dir": str(result.run_dir),
            "start_step": result.start_step, "end_step": result.end_step, "seconds": result.seconds,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "continued_from": str(result.continued_from) if result.continued_from else None,
            "last_losses": result.losses, "restore": metrics.get("restore"), "adapters": result.adapters,
            "profile": result.profile}


def newest_session(runs: Path) -> Path | None:
    """The ``session.json`` written last under the runs folder (the session ``finish`` publishes)."""
    found = sorted(Path(runs).glob(f"*/{SESSION_FILE}"), key=lambda p: p.stat().st_mtime) if Path(runs).is_dir() else []
    return found[-1] if found else None


def timing_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per backend of ``metrics["cpu_rtf"]``: RTF, speed-up over PyTorch, latency, memory, size."""
    rtf = metrics.get("cpu_rtf") or {}
    base = rtf.get("pytorch", {}).get("rtf")
    rows = []
    for name, v in rtf.items():
        rows.append({"backend": name, "rtf": v["rtf"],
                     "speedup_vs_pytorch": base / v["rtf"] if base and v["rtf"] else math.nan,
                     "latency_s_median": v["latency_s_median"], "peak_rss_mib": v["peak_rss_mib"],
                     "size_mib": v["disk_mib"]})
    return rows


def timing_markdown(metrics: dict[str, Any]) -> str:
    """The timing table in Markdown plus the fp32 ONNX-vs-PyTorch and int8-vs-fp32 checks below it."""
    rows = timing_rows(metrics)
    if not rows:
        return "No CPU timing: the ONNX export is off (`export_onnx = false`)."
    lines = ["| backend | RTF | speed-up vs PyTorch | median latency s | peak RSS MiB | size MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['backend']} | {r['rtf']:.4f} | {r['speedup_vs_pytorch']:.2f}x | {r['latency_s_median']:.3f} | "
              f"{r['peak_rss_mib']:.0f} | {r['size_mib']:.1f} |" for r in rows]
    check = metrics["onnx_vs_pytorch"]
    text = (f"\n\nfp32: max |ONNX - PyTorch| = {check['max_abs_diff']:.2e} (tolerance {check['tolerance']:g}, "
            f"lengths match: {check['lengths_match']}): **{'ok' if check['ok'] else 'FAILED'}**")
    if "int8_vs_fp32" in metrics:
        q = metrics["int8_vs_fp32"]
        text += (f"; int8 vs fp32 ONNX: spectral convergence {q.get('spectral_convergence_max', math.nan):.3f} "
                 f"(max {q['max_convergence']:g}), lengths match: {q['lengths_match']}: "
                 f"**{'ok' if q['ok'] else 'FAILED'}**")
    return "\n".join(lines) + text


def write_timing(metrics: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``timing.json`` (rows and checks) and ``timing.md`` (the rendered table) in ``out_dir``."""
    out_dir = Path(out_dir)
    checks = {k: metrics[k] for k in ("onnx_vs_pytorch", "int8_vs_fp32") if k in metrics}
    return {"timing_table": write_json(out_dir / TIMING_JSON, {"rows": timing_rows(metrics), "checks": checks}),
            "timing_markdown": write_text(timing_markdown(metrics), out_dir / TIMING_MARKDOWN)}


def failed_checks(metrics: dict[str, Any]) -> list[str]:
    """Names of the backend checks that failed (the stage exits non-zero after writing everything)."""
    return [k for k in ("onnx_vs_pytorch", "int8_vs_fp32") if k in metrics and not metrics[k]["ok"]]
