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
CHARTS = (("rtf", "real-time factor (lower is faster)", "seconds of compute per second of audio"),
          ("peak_rss_mib", "peak CPU memory (RSS)", "MiB"),
          ("q:dnsmos_ovrl", "DNSMOS overall (MOS estimate, higher is better)", "score, 1-5"),
          ("q:cer", "character error rate (lower is better)", "errors per reference character"))
NA_MARK = "n/a"
NOT_MEANINGFUL = "not meaningful here"
LANGUAGE_NAMES = {"en": "English", "bn": "Bangla", "kn": "Kannada", "hi": "Hindi"}
# Whisper models that read only English (and a little more) well enough for a character error rate.
ENGLISH_ONLY_ASR = ("base-offline", "base", "tiny", "small", "base.en", "tiny.en", "small.en")
ASR_METRICS = ("cer", "wer")
REFERENCE_METRICS = ("mcd_db", "f0_rmse_hz", "vuv_error")


def quality_verdicts(record: dict[str, Any], asr_model: str | None = None,
                     reference_sources: dict[str, str] | None = None) -> dict[str, str]:
    """The quality metrics of ``record`` that are numbers but mean nothing here, each with the reason: CER/WER
    from a Whisper model that cannot read the language, and reference metrics (MCD, F0, voicing) against
    references that are espeak-ng speech rather than a human recording. Earlier verdicts stored in the record
    (``not_meaningful``) are returned as they are."""
    if asr_model is None and reference_sources is None:
        return dict(record.get("not_meaningful") or {})
    lang = record.get("language") or ""
    name = LANGUAGE_NAMES.get(lang, lang)
    out: dict[str, str] = {}
    quality = record.get("quality") or {}
    if asr_model in ENGLISH_ONLY_ASR and lang != "en":
        for k in ASR_METRICS:
            if quality.get(k) is not None:
                out[k] = f"Whisper {asr_model} cannot read {name}"
    source = (reference_sources or {}).get(lang, "")
    if source.startswith("embedded:"):
        for k in REFERENCE_METRICS:
            if quality.get(k) is not None:
                out[k] = "the reference is espeak-ng speech, not a recording"
    return out


def judged(records: list[dict[str, Any]], asr_model: str | None,
           reference_sources: dict[str, str] | None) -> list[dict[str, Any]]:
    """Copies of ``records`` carrying ``not_meaningful`` (field -> reason) for the report and the notebook; the
    records file itself is left as measured."""
    return [{**r, "not_meaningful": quality_verdicts(r, asr_model, reference_sources)} for r in records]


TRAINED = ("parler", "vits", "pocket")  # systems the suite trains (random or barely trained on the smoke profile)


def verdict_rows(records: list[dict[str, Any]], smoke: bool) -> list[dict[str, str]]:
    """Per language: the system with the best meaningful quality figure (CER, else DNSMOS), the fastest one, and
    which to use with the reason; on the smoke profile trained systems are left out of the advice."""
    rows = []
    for lang in dict.fromkeys(r.get("language") or "?" for r in records):
        mine = [r for r in records if (r.get("language") or "?") == lang]
        usable = [r for r in mine if not (smoke and str(r["system"]).startswith(TRAINED))] or mine

        def best(key: str, pool: list[dict[str, Any]], low: bool) -> dict[str, Any] | None:
            scored = [r for r in pool if value(r, key) is not None]
            if not scored:
                return None
            return (min if low else max)(scored, key=lambda r: value(r, key))

        pick, metric = best("q:cer", usable, True), "character error rate (CER, lower is better)"
        if pick is None:
            pick, metric = best("q:dnsmos_ovrl", usable, False), "DNSMOS overall (a no-reference estimate)"
        fastest = best("rtf", mine, True)
        name = f"{LANGUAGE_NAMES.get(lang, lang)} ({lang})"

        def who(r: dict[str, Any] | None) -> str:
            if not r:
                return "none measured"
            return f"{r['system']} ({', '.join(x for x in (r['backend'], r['dtype']) if x and x != NA_MARK)})"

        if pick is None:
            use, why = who(fastest), "no quality figure is meaningful here, so only speed decides"
        else:
            key = "q:cer" if metric.startswith("character") else "q:dnsmos_ovrl"
            use, why = who(pick), f"best {metric}: {value(pick, key):.3g}"
        if smoke and any(str(r["system"]).startswith(TRAINED) for r in mine):
            why += ("; the trained systems are random or barely trained on the smoke profile, so they are left out: "
                    "run the T4 profile to compare them")
        rows.append({"language": name, "use": use, "why": why, "fastest": who(fastest),
                     "fastest RTF": f"{fastest['rtf']:.3f}" if fastest and fastest.get("rtf") is not None else NA_MARK,
                     "systems measured": ", ".join(dict.fromkeys(str(r["system"]) for r in mine))})
    return rows


def value(record: dict[str, Any], key: str) -> Any:
    """A record's field; ``q:name`` reads record['quality'][name] (None when judged not meaningful here)."""
    if key.startswith("q:"):
        if key[2:] in (record.get("not_meaningful") or {}):
            return None
        return (record.get("quality") or {}).get(key[2:])
    if key == "timed_in":  # records of saved audio say where they were timed; the others were timed here
        return (record.get("measured_on") or HERE).split(" on the ")[0]
    return record.get(key)


def cell(record: dict[str, Any], key: str, fmt: str) -> str:
    """One report cell: the formatted number, ``n/a`` when not measured, or "not meaningful here" (reason listed
    under the table)."""
    if key.startswith("q:") and key[2:] in (record.get("not_meaningful") or {}):
        return f"{NOT_MEANINGFUL}: {record['not_meaningful'][key[2:]]}"
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
    for ax, (key, title, unit) in zip(axes.flat, CHARTS, strict=True):
        rows = [(label(r), value(r, key)) for r in records if value(r, key) is not None]
        ax.barh(range(len(rows)), [v for _, v in rows], color="#4c72b0")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([n for n, _ in rows], fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit, fontsize=8)
        ax.set_ylabel("system, backend, dtype, device [language]", fontsize=8)
        if not rows:
            ax.text(0.5, 0.5, "no meaningful value measured", ha="center", va="center", transform=ax.transAxes)
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
        for k, why in (r.get("not_meaningful") or {}).items():
            seen.setdefault(f"{NOT_MEANINGFUL}: {why}", set()).add(f"quality.{k}")
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
                 failures: dict[str, str], out_dir: str | Path, *, title: str = "Benchmark",
                 verdict: list[dict[str, str]] | None = None) -> dict[str, Path | None]:
    """Write ``report.md``, ``report.html`` and ``charts.png`` into ``out_dir`` (with the per-language
    ``verdict`` table when given); return their paths."""
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
    md += ["## Not measured or not meaningful, and why", ""] + [f"- {x}" for x in _reasons(records)] + [""]
    if skipped:
        md += ["## Systems not benchmarked", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    if failures:
        md += ["## Failures", ""] + [f"- **{k}**: {v}" for k, v in failures.items()] + [""]
    if verdict:
        cols = list(verdict[0])
        md += ["## Which system for which language", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(v[c].replace("|", "/") for c in cols) + " |" for v in verdict] + [""]
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
                           ("Not measured or not meaningful, and why", _reasons(records)),
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
            + (("<h2>Which system for which language</h2><table><tr>"
                + "".join(f"<th>{esc(c)}</th>" for c in verdict[0]) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in v.values()) + "</tr>" for v in verdict)
                + "</table>") if verdict else "")
            + f"<h2>Audio gallery</h2><table><tr><th>system</th><th>backend</th><th>lang</th><th>text</th>"
            f"<th>audio</th></tr>{gal}</table></body></html>")
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"markdown": md_path, "html": html_path, "chart": chart}
