"""The benchmark report: a table and bar charts (RTF, peak memory, DNSMOS, CER) per system/backend and an
audio gallery, written as Markdown and HTML into the run folder (the notebook renders the same files)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

# (header, field, format); quality fields are read from record["quality"]
COLUMNS = (
    ("system", "system", "{}"), ("backend", "backend", "{}"), ("dtype", "dtype", "{}"), ("device", "device", "{}"),
    ("lang", "language", "{}"), ("RTF", "rtf", "{:.3f}"), ("latency med s", "latency_s_median", "{:.3f}"),
    ("latency p90 s", "latency_s_p90", "{:.3f}"), ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
    ("peak CUDA MiB", "peak_cuda_mib", "{:.0f}"), ("params M", "params", "{:.2f}"), ("disk MiB", "disk_mib", "{:.1f}"),
    ("J / audio s", "energy_j_per_audio_s", "{:.2f}"), ("DNSMOS ovrl", "q:dnsmos_ovrl", "{:.2f}"),
    ("P.808", "q:dnsmos_p808", "{:.2f}"), ("CER", "q:cer", "{:.3f}"), ("WER", "q:wer", "{:.3f}"),
    ("MCD dB", "q:mcd_db", "{:.2f}"), ("F0 RMSE Hz", "q:f0_rmse_hz", "{:.1f}"), ("V/UV err", "q:vuv_error", "{:.3f}"),
    ("timed in", "timed_in", "{}"),
)
HERE = "06_benchmark"
CHARTS = (("rtf", "real-time factor (lower is faster)"), ("peak_rss_mib", "peak CPU RSS, MiB"),
          ("q:dnsmos_ovrl", "DNSMOS overall (MOS estimate)"), ("q:cer", "character error rate (Whisper base)"))
NA_MARK = "n/a"


def value(record: dict[str, Any], key: str) -> Any:
    """A record's field; ``q:name`` reads record['quality'][name]."""
    if key.startswith("q:"):
        return (record.get("quality") or {}).get(key[2:])
    if key == "timed_in":  # records of saved audio say where they were timed; the others were timed here
        return (record.get("measured_on") or HERE).split(" on the ")[0]
    return record.get(key)


def cell(record: dict[str, Any], key: str, fmt: str) -> str:
    v = value(record, key)
    if v is None:
        return NA_MARK
    if key == "params":
        v = v / 1e6
    return fmt.format(v)


def label(record: dict[str, Any]) -> str:
    return f"{record['system']} {record['backend']} {record['dtype']} {record['device']} [{record.get('language', '')}]"


def plot_charts(records: list[dict[str, Any]], path: str | Path) -> Path | None:
    """One horizontal bar chart per metric in :data:`CHARTS` (records without that number are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return None
    height = max(2.5, 0.3 * len(records) + 1)
    fig, axes = plt.subplots(2, 2, figsize=(14, 2 * height), squeeze=False)
    for ax, (key, title) in zip(axes.flat, CHARTS, strict=True):
        rows = [(label(r), value(r, key)) for r in records if value(r, key) is not None]
        ax.barh(range(len(rows)), [v for _, v in rows], color="#4c72b0")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([n for n, _ in rows], fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(records: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (``n/a`` where a number was not measured; reasons in the records)."""
    head = "| " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    rows = ["| " + " | ".join(cell(r, k, f) for _, k, f in COLUMNS) + " |" for r in records]
    return "\n".join([head, rule, *rows])


def _env_line(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no records"
    r = records[0]
    pk = ", ".join(f"{k} {v}" for k, v in r["packages"].items())
    return f"platform {r['platform']}; CPU {r['cpu']}; GPU {r['gpu']}; Python {r['python']}; {pk}"


def _reasons(records: list[dict[str, Any]]) -> list[str]:
    """Each distinct 'not available' reason once, with the fields it applies to."""
    seen: dict[str, set[str]] = {}
    for r in records:
        for k, why in (r.get("not_available") or {}).items():
            seen.setdefault(why, set()).add(k)
    return [f"{', '.join(sorted(ks))}: {why}" for why, ks in seen.items()]


def provenance(records: list[dict[str, Any]]) -> list[str]:
    """For each record of another stage's saved audio: where its speed/memory were measured and where each
    quality metric was computed (records without ``measured_on`` were measured and scored by this run)."""
    out = []
    for r in records:
        if not r.get("measured_on"):
            continue
        by_source: dict[str, list[str]] = {}
        for metric, source in (r.get("quality_source") or {}).items():
            by_source.setdefault(source, []).append(metric)
        quality = "; ".join(f"{', '.join(ms)} by {src}" for src, ms in by_source.items()) or "none"
        out.append(f"{label(r)}: speed/memory {r['measured_on']}; quality {quality}")
    return out


def write_report(records: list[dict[str, Any]], gallery: list[dict[str, Any]], skipped: dict[str, str],
                 failures: dict[str, str], out_dir: str | Path, *, title: str = "Benchmark") -> dict[str, Path | None]:
    """Write ``report.md``, ``report.html`` and ``charts.png`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = plot_charts(records, out_dir / "charts.png")
    warn = ("Systems trained in a smoke run are randomly initialised or barely trained: their quality numbers "
            "show the mechanics only. DNSMOS is a no-reference estimate, CER/WER come from Whisper base.")
    md = [f"# {title}", "", warn, "", f"Environment: {_env_line(records)}", "", markdown_table(records), ""]
    if chart:
        md += [f"![charts]({chart.name})", ""]
    imported = provenance(records)
    if imported:
        md += ["## Numbers from other stages (saved audio)", ""] + [f"- {x}" for x in imported] + [""]
    md += ["## Not measured, and why", ""] + [f"- {x}" for x in _reasons(records)] + [""]
    if skipped:
        md += ["## Systems not benchmarked", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    if failures:
        md += ["## Failures", ""] + [f"- **{k}**: {v}" for k, v in failures.items()] + [""]
    md += ["## Audio gallery", ""]
    md += [f"- {g['system']} / {g['backend']} / {g['dtype']} [{g['language']}]: "
           f"[{Path(g['path']).name}]({os.path.relpath(g['path'], out_dir)}) - {g['text']}" for g in gallery]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")

    esc = html.escape
    th = "".join(f"<th>{esc(h)}</th>" for h, _, _ in COLUMNS)
    trs = "".join("<tr>" + "".join(f"<td>{esc(cell(r, k, f))}</td>" for _, k, f in COLUMNS) + "</tr>" for r in records)
    lists = ""
    for heading, items in (("Numbers from other stages (saved audio)", imported),
                           ("Not measured, and why", _reasons(records)),
                           ("Systems not benchmarked", [f"{k}: {v}" for k, v in skipped.items()]),
                           ("Failures", [f"{k}: {v}" for k, v in failures.items()])):
        if items:
            lists += f"<h2>{heading}</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in items) + "</ul>"
    gal = "".join(f"<tr><td>{esc(g['system'])}</td><td>{esc(g['backend'])}</td><td>{esc(g['language'])}</td>"
                  f"<td>{esc(g['text'])}</td><td><audio controls preload='none' "
                  f"src='{esc(os.path.relpath(g['path'], out_dir))}'></audio></td></tr>" for g in gallery)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
            "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse;font-size:12px} "
            "td,th{border:1px solid #ccc;padding:3px 6px} th{background:#eee}</style></head><body>"
            f"<h1>{esc(title)}</h1><p>{esc(warn)}</p><p><small>{esc(_env_line(records))}</small></p>"
            f"<table><tr>{th}</tr>{trs}</table>"
            + (f"<p><img src='{chart.name}' style='max-width:100%'></p>" if chart else "") + lists
            + f"<h2>Audio gallery</h2><table><tr><th>system</th><th>backend</th><th>lang</th><th>text</th>"
            f"<th>audio</th></tr>{gal}</table></body></html>")
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"markdown": md_path, "html": html_path, "chart": chart}
