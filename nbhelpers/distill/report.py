"""What notebook 03 shows, written by the stage's child process into the run folder: the layer map and
architecture diff, the teacher-cache decision, the loss curves, the teacher-vs-student tables and bar charts,
and the listening index (texts with their recording and every system's WAV).

The notebook kernel has no numpy/pandas/matplotlib: tables are plain JSON, plots PNG files, audio WAV files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..parler.report import plot_curves
from ..records import write_json
from .evaluate import SUMMARY_FIELDS, summary_rows
from .student import architecture_diff

ARCHITECTURE_FILE = "architecture.json"
TEACHER_CACHE_FILE = "teacher_cache.json"
LOSS_CURVE_FILE = "loss_curve.png"
SUMMARY_FILE = "summary.json"
COMPARISON_PLOT_FILE = "comparison.png"
PLAN_FILE = "plan.json"
LOSS_PARTS = ("ce", "kd", "hidden", "encoder")
# the bar charts of the comparison: metric, axis label (with its unit)
PLOTTED = (("params_total", "parameters (count)"), ("weights_mib", "weights (MiB)"), ("latency_s", "latency (s)"),
           ("rtf", "real-time factor (s compute / s audio)"), ("test_ce", "test CE (nats)"),
           ("code_accuracy", "code accuracy (fraction)"), ("cer", "Whisper CER (fraction)"),
           ("dnsmos_ovrl", "DNSMOS overall (MOS 1-5)"), ("mcd_db", "MCD-DTW (dB)"))


def architecture_tables(report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The student's construction as tables: per student decoder layer the teacher layer it was copied from
    and the one it is matched with (and whether through a learnt projection); the T5 block map, the prompt
    vocabulary sizes and the component-by-component architecture diff."""
    proj = report.get("hidden_projections")
    hidden_on = params["hidden_weight"] > 0
    copied = report["decoder_layer_map"]
    layers = [{"student decoder layer": i,
               "copied from teacher layer": copied[i] if copied else "fresh (narrow decoder)",
               "matched with teacher layer": teacher if hidden_on else "- (hidden_weight = 0)",
               "through a learnt projection": bool(proj)}
              for i, teacher in enumerate(report["hidden_layer_map"])]
    if proj:
        projections = (f"{proj['layers']} x Linear, {proj['params']:,} parameters, used in training only "
                       "(not exported)")
    else:
        projections = "none " + ("(hidden_weight = 0)" if report["narrow_decoder"]
                                 else "(the student keeps the teacher's width)")
    return {"teacher_source": report.get("teacher_source"), "layers": layers, "hidden_projections": projections,
            "text_encoder_layer_map": report["text_encoder_layer_map"],
            "prompt_vocab": {"teacher": report["teacher_prompt_vocab"], "student": report["prompt_vocab"]},
            "components": architecture_diff(report["teacher"], report["student"])}


def cache_decision(metrics: dict[str, Any]) -> dict[str, Any]:
    """The teacher-cache decision and what it did, from the run's metrics, with one sentence that says it."""
    facts = {k: v for k, v in metrics.items()
             if k.startswith("teacher_cache") or k in ("kd_topk", "teacher_forward_batches", "teacher_cached_batches")}
    summary = (f"teacher cache: {metrics.get('teacher_cache')} (setting {metrics.get('teacher_cache_setting')!r}, "
               f"estimate {metrics.get('teacher_cache_estimate_gb', 0):.4g} GB for "
               f"{metrics.get('teacher_cache_examples')} examples, limit {metrics.get('teacher_cache_max_gb', 0):g} GB); "
               f"reason: {metrics.get('teacher_cache_reason')}")
    return {"summary": summary, "facts": facts}


# the comparison's figures that rest on the Whisper transcript (CER), and on a recording (MCD)
ASR_BASED = ("cer", "cer_vs_teacher", "quality_within_10pct")
REFERENCE_BASED = ("mcd_db",)


def not_meaningful(profile: str) -> dict[str, str]:
    """The comparison's figures that mean nothing under ``profile``, each with the reason: CER (and what rests on
    it) from a Whisper model that cannot read Kannada; MCD against the smoke corpus's espeak-ng recordings."""
    from ..bench.report import ENGLISH_ONLY_ASR, NOT_MEANINGFUL
    from ..profiles import load_profile

    params = load_profile("distill", profile)
    out = {}
    if str(params.get("asr_model")) in ENGLISH_ONLY_ASR:
        out.update({k: f"{NOT_MEANINGFUL}: Whisper {params['asr_model']} cannot read Kannada" for k in ASR_BASED})
    if profile == "smoke":
        out.update({k: f"{NOT_MEANINGFUL}: the reference is espeak-ng speech, not a recording"
                    for k in REFERENCE_BASED})
    return out


def headline(comparison: dict[str, dict[str, Any]], profile: str,
             hidden: dict[str, str] | None = None) -> list[str]:
    """The student's figures against the suite's targets, as sentences (``hidden``: figures shown by their
    reason instead of a number)."""
    s = comparison.get("student")
    hidden = hidden or {}
    if not s:
        return []
    speed = s.get("speedup")
    lines = [f"student/teacher: total parameters {s['params_total_ratio']:.1%} (target <= 50 %), decoder "
             f"{s['params_decoder_ratio']:.1%} (target <= 25 %), generation "
             + (f"{speed:.2f}x faster" if speed is not None else "speed not compared (other device)")
             + " (target >= 2.5x; the targets are measured on the real architecture by benchmarks/distill.py)"]
    verdict = {k: hidden.get(k, s.get(k)) for k in ("cer_vs_teacher", "mos_vs_teacher", "quality_within_10pct")}
    lines.append("quality vs teacher (target: within 10 %): "
                 + ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in verdict.items())
                 + (" - smoke: random-weight models, mechanics only" if profile == "smoke" else ""))
    return lines


def plot_comparison(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """One bar chart per headline metric (systems side by side, labelled axes with units); None when there
    is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(m, label) for m, label in PLOTTED if any(r.get(m) is not None for r in rows)]
    if not metrics:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = min(5, len(metrics))
    lines = (len(metrics) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(3.2 * columns, 3.1 * lines), squeeze=False)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, (metric, label) in zip(axes.flat, metrics, strict=False):
        names = [r["system"] for r in rows if r.get(metric) is not None]
        values = [float(r[metric]) for r in rows if r.get(metric) is not None]
        ax.bar(names, values, color=colours[:len(names)])
        ax.set(title=metric, ylabel=label, xlabel="system")
        ax.tick_params(axis="x", labelrotation=20)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("teacher vs student (same texts, seeds and device)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return path


def sample_rows(texts: list[str], n_fixed: int, states: dict[str, str], compare_dir: str | os.PathLike,
                recordings: dict[str, str]) -> list[dict[str, Any]]:
    """The samples contract's rows (:mod:`nbhelpers.samples`): each evaluated text spoken by each system (``states``:
    system -> its model state), in the file names :func:`nbhelpers.distill.pipeline.run` writes (``<system>_<i>.wav``
    for the fixed sentences, ``<system>_test_<i>.wav`` for the test-split rows, which carry their ``recording``)."""
    from ..samples import sample_row

    folder = Path(compare_dir)
    rows = []
    for i, text in enumerate(texts):
        stem = f"_{i}" if i < n_fixed else f"_test_{i - n_fixed}"
        for name, state in states.items():
            rows.append(sample_row(text, folder / f"{name}{stem}.wav", state, system=name,
                                   **({"recording": recordings[text]} if text in recordings else {})))
    return rows


def write_tables(run_dir: Path, comparison: dict[str, dict[str, Any]], profile: str) -> dict[str, Path]:
    """``summary.json`` (the comparison table, its columns and the headline sentences) and ``comparison.png``."""
    rows = summary_rows(comparison)
    columns = ["system", "device", *[f for f in SUMMARY_FIELDS if any(f in r for r in rows)]]
    hidden = not_meaningful(profile)
    shown = [{k: (hidden[k] if k in hidden and v is not None else v) for k, v in r.items()} for r in rows]
    out = {"summary": write_json(run_dir / SUMMARY_FILE, {"rows": shown, "columns": columns,
                                                          "headline": headline(comparison, profile, hidden),
                                                          "not_meaningful": hidden})}
    plot = plot_comparison([{k: v for k, v in r.items() if k not in hidden} for r in rows],
                           run_dir / COMPARISON_PLOT_FILE)
    if plot is not None:
        out["comparison_plot"] = plot
    return out


__all__ = ["architecture_tables", "cache_decision", "headline", "plot_comparison", "plot_curves", "sample_rows",
           "write_json", "write_tables"]
