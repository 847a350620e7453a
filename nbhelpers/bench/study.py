"""The study report: one Markdown/HTML page built only from the records (every stage's run log entry and 06's
benchmark records) that answers the study's questions as far as this workspace's runs can: what was trained and at
what cost, full vs LoRA/QLoRA where several modes ran, which system to use per language and per hardware, and the
limits of every figure (random weights, metrics that mean nothing here, hardware or providers that were absent).
06 regenerates it after each run; ``python -m nbhelpers.bench study`` rebuilds it from the records alone."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import FINAL, read_records
from .report import LANGUAGE_NAMES, NA_MARK, _reasons, value
from .sizes import fastspeech2_row, newest_fastspeech2_sizes, newest_size_runs, size_row

TRAINING_STAGES = {"02_parler_finetune": "Parler-TTS fine-tune", "03_parler_distill": "Parler-TTS distillation",
                   "04_vits_bangla_finetune": "VITS (coqui)", "07_pocket_tts_finetune": "Pocket TTS",
                   "08_baselines": "FastSpeech2 + HiFi-GAN"}


def _num(v: Any, fmt: str) -> str:
    return fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else NA_MARK


def _metric(m: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in a record's metrics (stages name the same figure differently)."""
    return next((m[k] for k in keys if m.get(k) is not None), None)


def final_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run's final record (done / resume_needed / failed), oldest first; ``started`` lines are left out."""
    return [r for r in records if r.get("status") in FINAL]


def training_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per finished training run: what it trained, its cost (time per step, peak memory, trainable
    share) and where it ended (final loss), with the GPU utilisation when the trainer sampled it."""
    rows = []
    for r in final_records(records):
        if r.get("stage") not in TRAINING_STAGES:
            continue
        m = r.get("metrics") or {}
        trainable, total = _metric(m, "params_trainable"), _metric(m, "params_total", "total")
        steps = _metric(m, "step", "end_step")
        util = _metric(m, "gpu_util_pct")
        rows.append({
            "stage": TRAINING_STAGES[r["stage"]], "status": r["status"], "profile": r.get("profile", ""),
            "mode": str(m.get("mode") or "full"), "steps": _num(steps, "{:.0f}"),
            "s / step": _num(_metric(m, "seconds_per_step"), "{:.3f}"),
            "peak memory GiB": _num(_metric(m, "peak_memory_gib"), "{:.2f}"),
            "trainable params": (f"{trainable / 1e6:.3g} M of {total / 1e6:.3g} M" if trainable and total
                                 else _num(total, "{:.0f}")),
            "final loss": _num(_metric(m, "final_loss", "train_loss_1"), "{:.3f}"),
            "GPU util %": _num(util, "{:.0f}") if util is not None else str(m.get("utilisation_note") or "not sampled"),
            "devices": ", ".join((r.get("environment") or {}).get("gpus") or []) or "CPU",
        })
    return rows


def finetune_comparison(records: list[dict[str, Any]], stage: str = "02_parler_finetune"
                        ) -> tuple[list[dict[str, str]], str]:
    """Fine-tuning variants of ``stage`` (02 Parler or 04 VITS) side by side: the newest finished run of each (Parler:
    the fine-tuning study's runs ``parler/ft-<variant>`` by variant, other runs by mode; VITS: by mode and LoRA rank)
    and a sentence saying what the comparison can and cannot tell from the runs present."""
    vits = stage != "02_parler_finetune"
    newest: dict[str, dict[str, Any]] = {}
    for r in final_records(records):
        if r.get("stage") == stage and r["status"] != "failed":
            m = r.get("metrics") or {}
            run = Path(str((r.get("outputs") or {}).get("run_dir") or "")).name
            if vits:
                variant = f"lora-r{m['lora_rank']}" if m.get("mode") == "lora" else "full"
            else:
                variant = run[3:] if run.startswith("ft-") else str(m.get("mode") or "full")
            newest[variant] = r
    rows = []
    for variant, r in newest.items():
        m = r["metrics"]
        trainable, total = m.get("params_trainable"), m.get("params_total")
        rows.append({"variant": variant, "steps": _num(m.get("end_step" if vits else "step"), "{:.0f}"),
                     "trainable %": _num(100 * trainable / total if trainable and total else None, "{:.2f}"),
                     "peak memory GiB": _num(m.get("peak_memory_gib"), "{:.2f}"),
                     "s / step": _num(m.get("seconds_per_step"), "{:.3f}"),
                     **({"final mel loss": _num(m.get("train_loss_mel"), "{:.3f}")} if vits else
                        {"final loss": _num(m.get("final_loss"), "{:.3f}"),
                         "final eval loss": _num(m.get("final_eval_loss"), "{:.3f}"),
                         **_gen_eval(m.get("gen_eval") or {})})})
    if len(rows) < 2:
        study = "--stage vits --variants full,lora:8,lora:32" if vits else "--variants full,lora:8,lora:32,4bit:8"
        note = ("Only one fine-tuning variant ran here, so there is nothing to compare. Run the fine-tuning study "
                f"(`python -m nbhelpers.bench finetune-study {study} --steps N`: same data and steps per variant"
                f"{'' if vits else '; 8/4-bit need a GPU'}) and regenerate this report.")
    else:
        note = _steps_note(rows, "modes", "Same step budget in every mode.", "compare losses with care")
    return rows, note


def _steps_note(rows: list[dict[str, str]], what: str, same: str, caution: str = "compare with care") -> str:
    """``same`` when every run that did not fail took the same number of steps, else a warning naming the counts."""
    steps = {row["steps"] for row in rows if row.get("status") != "failed"}
    return same if len(steps) == 1 else f"The {what} ran different numbers of steps ({', '.join(sorted(steps))}): {caution}."


def size_comparison(records: list[dict[str, Any]]) -> tuple[list[dict[str, str]], str]:
    """Distilled students of several sizes side by side (the size study's runs ``distill/size-<point>``), with a
    sentence saying what the comparison can tell."""
    rows = []
    for point, r in newest_size_runs(records).items():
        row = size_row(point, r)
        rows.append({"size": point, "status": str(row["status"]), "steps": _num(row["steps"], "{:.0f}"),
                     "params (of teacher)": _num(row["params_total_ratio"], "{:.2f}"),
                     "speed-up": _num(row["speedup"], "{:.2f}"), "test CE": _num(row["test_ce"], "{:.3f}"),
                     "teacher test CE": _num(row["teacher_test_ce"], "{:.3f}"),
                     "code accuracy": _num(row["code_accuracy"], "{:.4f}"),
                     "s / step": _num(row["seconds_per_step"], "{:.3f}")})
    if len(rows) < 2:
        return rows, ("No size comparison here: run the size study (`python -m nbhelpers.bench size-study --points "
                      "\"layers=2;layers=4;layers=8\" --steps N`: one student per size from the same teacher, data "
                      "and steps) and regenerate this report.")
    return rows, _steps_note(rows, "sizes", "Same teacher, data and step budget at every size.")


def fastspeech2_size_comparison(records: list[dict[str, Any]]) -> tuple[list[dict[str, str]], str]:
    """Stage-08 runs of several FastSpeech2 shapes side by side (the newest run of each shape), with a sentence
    saying what the comparison can tell."""
    rows = []
    for point, r in newest_fastspeech2_sizes(records).items():
        row = fastspeech2_row(point, r)
        rows.append({"shape": point, "status": str(row["status"]), "steps": _num(row["steps"], "{:.0f}"),
                     "params": _num(row["params_total"], "{:.0f}"), "RTF": _num(row["rtf"], "{:.4f}"),
                     "final mel loss": _num(row["final_mel_loss"], "{:.3f}"),
                     "s / step": _num(row["seconds_per_step"], "{:.3f}")})
    if len(rows) < 2:
        return rows, ("No FastSpeech2 size comparison here: run the size study (`python -m nbhelpers.bench size-study "
                      "--stage baselines --points \"hidden=64;hidden=128;hidden=256,layers=2\" --steps N`: one "
                      "acoustic model per shape on the same data and steps) and regenerate this report.")
    return rows, _steps_note(rows, "shapes", "Same data and step budget at every shape.")


def _gen_eval(scores: dict[str, Any]) -> dict[str, str]:
    """The generation evaluation's last CER and pitch-bin agreement, or its "not meaningful here" reason."""
    out = {}
    for key, label, fmt in (("cer", "gen-eval CER", "{:.3f}"), ("pitch_bin_match", "pitch bin match", "{:.2f}")):
        v = scores.get(key)
        out[label] = v if isinstance(v, str) else _num(v, fmt)
    return out


def hardware_rows(bench: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per device and language, the fastest measured variant and its memory: the "on this hardware, use" table."""
    rows = []
    for device in dict.fromkeys(str(r.get("device") or "?") for r in bench):
        for lang in dict.fromkeys(str(r.get("language") or "?") for r in bench if str(r.get("device")) == device):
            pool = [r for r in bench if str(r.get("device")) == device and str(r.get("language")) == lang
                    and value(r, "rtf") is not None]
            if not pool:
                continue
            best = min(pool, key=lambda r: value(r, "rtf"))
            memory = best.get("peak_cuda_mib") if device.startswith("cuda") else best.get("peak_rss_mib")
            util = best.get("gpu_util_pct")
            rows.append({"device": device, "language": f"{LANGUAGE_NAMES.get(lang, lang)} ({lang})",
                         "fastest": f"{best['system']} ({best.get('backend')}, {best.get('dtype')})",
                         "RTF": _num(best.get("rtf"), "{:.3f}"),
                         "latency median s": _num(best.get("latency_s_median"), "{:.3f}"),
                         "peak memory MiB": _num(memory, "{:.0f}"),
                         "GPU util %": _num(util, "{:.0f}") if util is not None else
                         str((best.get("not_available") or {}).get("gpu_util_pct") or NA_MARK),
                         "variants measured": str(len(pool))})
    return rows


def limitations(records: list[dict[str, Any]], bench: list[dict[str, Any]], skipped: dict[str, str],
                providers: dict[str, str]) -> list[str]:
    """What every figure above cannot say, from the records: random/barely trained models, metrics judged not
    meaningful or not measured, systems not benchmarked and ONNX Runtime providers absent on this machine."""
    out = []
    smoke = sorted({r["stage"] for r in final_records(records) if r.get("profile") == "smoke"
                    and r.get("stage") in TRAINING_STAGES})
    if smoke:
        out.append("Smoke profile: " + ", ".join(TRAINING_STAGES[s] for s in smoke) + " ran a few steps from random "
                   "or tiny weights; their losses and quality figures show the mechanics only.")
    out += _reasons(bench)
    out += [f"{name} not benchmarked: {why}" for name, why in skipped.items()]
    out += [f"ONNX Runtime {p}: {why}" for p, why in providers.items()]
    failed = [r for r in final_records(records) if r["status"] == "failed"]
    out += [f"{r['stage']} run {r.get('run_id')} failed: {str(r.get('error', ''))[:200]}" for r in failed]
    return out


def _md_table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return ["(none)"]
    cols = list(rows[0])
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |" for r in rows])


def _html_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    return ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>" for r in rows)
            + "</table>")


def write_study(workspace: Workspace, bench: list[dict[str, Any]], verdict: list[dict[str, str]],
                skipped: dict[str, str], providers: dict[str, str], out_dir: str | Path) -> dict[str, Path]:
    """Write ``study.md`` and ``study.html`` into ``out_dir`` from the workspace's run log and the judged
    benchmark records ``bench`` (this run's), with 06's per-language ``verdict``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = read_records(workspace)
    training = training_rows(records)
    modes, modes_note = finetune_comparison(records)
    vits_modes, vits_note = finetune_comparison(records, "04_vits_bangla_finetune")
    sizes, sizes_note = size_comparison(records)
    fs2_sizes, fs2_note = fastspeech2_size_comparison(records)
    hardware = hardware_rows(bench)
    limits = limitations(records, bench, skipped, providers)
    sections = [
        ("What was trained, and at what cost", training,
         "Each finished training run in this workspace (newest last). GPU utilisation is the mean NVML busy % over "
         "the whole run on the main process's GPU; off CUDA the reason is shown instead."),
        ("Full fine-tuning vs LoRA / QLoRA (Parler, 02)", modes, modes_note),
        ("Full fine-tuning vs LoRA (VITS, 04)", vits_modes, vits_note),
        ("Student size vs quality and speed (Parler distillation, 03)", sizes, sizes_note),
        ("FastSpeech2 shape vs quality and speed (08)", fs2_sizes, fs2_note),
        ("Which system for which language", verdict,
         "From 06's measurements: the best meaningful quality figure, else speed."),
        ("Which system on which hardware", hardware,
         "Fastest measured variant per device and language (real-time factor: compute seconds per audio second)."),
    ]
    title = f"Study report ({time.strftime('%Y-%m-%d %H:%M')})"
    md = [f"# {title}", "", "Built from the run log and 06's benchmark records of this workspace; regenerate with "
          "`python -m nbhelpers.bench study`.", ""]
    for heading, rows, note in sections:
        md += [f"## {heading}", "", note, "", *_md_table(rows), ""]
    md += ["## Limitations", ""] + [f"- {x}" for x in limits or ["none recorded"]] + [""]
    md_path = out_dir / "study.md"
    tmp = md_path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(md), encoding="utf-8")
    tmp.replace(md_path)
    esc = html.escape
    body = "".join(f"<h2>{esc(h)}</h2><p>{esc(n)}</p>{_html_table(rows)}" for h, rows, n in sections)
    body += "<h2>Limitations</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in limits or ["none recorded"]) + "</ul>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
            "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse;font-size:12px} "
            "td,th{border:1px solid #ccc;padding:3px 6px} th{background:#eee}</style></head><body>"
            f"<h1>{esc(title)}</h1>{body}</body></html>")
    html_path = out_dir / "study.html"
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    return {"markdown": md_path, "html": html_path}
