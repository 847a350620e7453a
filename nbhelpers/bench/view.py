"""What notebook 06 shows, written by the stage into ``<workspace>/bench/``: the systems that would be benchmarked
(``systems.json``), the results of a run as tables, notes and gallery players (``view.json``, beside the report and
``charts.png``), and the listening-test MOS from returned ratings (``listening/mos.json``). The notebook kernel only
reads and displays them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..records import write_json
from .report import COLUMNS, _env_line, _reasons, cell, judged, provenance, verdict_rows, write_report

WARNING = ("Systems trained in a smoke run are randomly initialised or barely trained: their quality numbers show the "
           "mechanics only. DNSMOS is a no-reference estimate; CER/WER come from Whisper. `n/a` marks a number that "
           "was not measured and *not meaningful here* one that was measured but cannot mean anything in this run "
           "(no capable model or no valid reference), with the reasons in the next table.")


def systems_view(variants: list[Any], skipped: dict[str, str], providers: list[str]) -> dict[str, Any]:
    """The variants discovery found (one row each) and every system it skipped with the reason."""
    return {"providers": providers,
            "variants": [{"system": v.system, "backend": v.backend, "dtype": v.dtype, "device": v.device,
                          "languages": ", ".join(v.languages), "kind": v.kind, "source": str(v.source)}
                         for v in variants],
            "skipped": [{"system": name, "why": why} for name, why in skipped.items()]}


def result_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per record with every report column, formatted as in report.md (``n/a`` where not measured)."""
    return [{header: cell(r, key, fmt) for header, key, fmt in COLUMNS} for r in records]


def run_view(records: list[dict[str, Any]], gallery: list[dict[str, Any]], skipped: dict[str, str],
             failures: dict[str, str], summary: dict[str, Any]) -> dict[str, Any]:
    """The tables, notes and players of one benchmark run (``records``: this run's records)."""
    parler = [r for r in records if str(r.get("system", "")).startswith("parler-")]
    if parler:
        parler_note = ("Parler rows: speed and memory were measured where 'timed in' says (the parler stack); "
                       "quality metrics by the stage named per metric below.")
    else:
        parler_note = f"No Parler rows: {skipped.get('parler') or 'see the failures above'}"
    return {
        "run": summary["run"], "warning": WARNING, "environment": _env_line(records),
        "results": result_rows(records),
        "not_measured": [{"not measured": line.split(": ", 1)[0], "why": line.split(": ", 1)[-1]}
                         for line in _reasons(records)],
        "skipped": [{"system": k, "why": v} for k, v in skipped.items()],
        "failures": [{"variant": k, "error": v} for k, v in failures.items()],
        "parler": {"rows": result_rows(parler), "provenance": [{"where each number comes from": p}
                                                               for p in provenance(parler)],
                   "note": parler_note},
        "gallery": [{**g, "caption": f"**{g['system']}** / {g['backend']} / {g['dtype']} [{g['language']}]: "
                                     f"{g['text']}"} for g in gallery],
        "chart": summary.get("chart") or None, "report_md": summary["report_md"],
        "report_html": summary["report_html"], "listening_page": summary.get("listening_page") or None,
    }


def mos_view(returned: list[Path], key: Path, page: str | None) -> dict[str, Any]:
    """MOS with a 95 % confidence interval per system from the returned rating CSVs (none yet: says where to put
    them)."""
    from ..measure.listening import aggregate

    rows = []
    if returned:
        for system, r in aggregate([str(p) for p in returned], str(key)).items():
            rows.append({"system": system, "MOS": round(r["mos"], 2),
                         "95% CI": f"± {r['ci95']:.2f}" if r["ci95"] is not None else "one rating: no CI",
                         "ratings": r["n"]})
        note = f"{len(returned)} returned rating file(s)"
    else:
        note = f"no returned ratings yet in {key.parent / 'returned'}"
    return {"page": page, "key": str(key), "returned": [str(p) for p in returned], "rows": rows, "note": note}


def reference_sources(profile: str, datasets: dict[str, str]) -> dict[str, str]:
    """Per language, where the benchmark's reference recordings come from: the data-prep source of the dataset
    whose test split is read (``embedded:`` = the espeak-ng smoke corpus)."""
    from ..profiles import load_profile

    sources = load_profile("data", profile).get("sources") or {}
    return {lang: str(sources.get(name, {}).get("source", "")) for lang, name in datasets.items()}


def judge_run(params: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the run's report and ``view.json`` with the metrics that mean nothing here (see
    :func:`~nbhelpers.bench.report.quality_verdicts`) shown as such, and the per-language verdict, and write the
    study report (:mod:`nbhelpers.bench.study`) beside it; returns the view."""
    from ..records import read_records

    asr = str(params.get("asr_model", "")) if params.get("asr", True) else None
    refs = reference_sources(params["profile"], params.get("datasets") or {})
    run = summary["run"]
    records = judged([r for r in read_records(summary["records_path"]) if r.get("run") == run
                      or r.get("stage") != "06_benchmark"], asr, refs)
    this_run = [r for r in records if r.get("run") == run]
    verdict = verdict_rows(this_run, smoke=params["profile"] == "smoke")
    out = Path(summary["records_path"]).parent
    write_report(records, summary["gallery"], summary["skipped"], summary["failures"], out,
                 title=f"Benchmark {run} ({params['profile']})", verdict=verdict)
    view = run_view(this_run, summary["gallery"], summary["skipped"], summary["failures"], summary)
    view["verdict"] = verdict
    from ..measure.ort import missing_providers
    from ..paths import Workspace
    from .study import write_study

    study = write_study(Workspace(out.parent), this_run, verdict, summary["skipped"], missing_providers(), out)
    view["study"] = {k: str(v) for k, v in study.items()}
    write_json(summary["view"], view)
    return view
