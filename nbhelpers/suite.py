"""Run the numbered notebooks in order with papermill, each on its own stack's kernel, and leave a run folder
with the executed notebooks and a summary table.

    python -m nbhelpers.suite run --profile smoke [--only 01,03] [--out DIR] [--workspace DIR]
    python -m nbhelpers.suite list
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .paths import PROJECT_ROOT
from .profiles import PROFILES
from .records import read_records

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NUMBERED = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")
RUN_LAST = ("06_benchmark.ipynb",)  # compares what every other stage produced (07 included), so it runs after them


@dataclass
class NotebookResult:
    notebook: str
    kernel: str
    status: str = "not run"  # ok | failed | not run
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    stage_status: str | None = None  # status of the stage record the notebook wrote
    error: str | None = None


def discover(notebooks_dir: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (NN_name.ipynb) in number order, except that :data:`RUN_LAST` ones come last; optionally
    only those whose number is in ``only``."""
    found = sorted((p for p in notebooks_dir.glob("*.ipynb") if NUMBERED.match(p.name)),
                   key=lambda p: (p.name in RUN_LAST, p.name))
    if only:
        wanted = {o.strip().zfill(2) for o in only if o.strip()}
        unknown = wanted - {p.name[:2] for p in found}
        if unknown:
            raise SystemExit(f"--only names notebooks that do not exist: {', '.join(sorted(unknown))} "
                             f"(available: {', '.join(p.name[:2] for p in found)})")
        found = [p for p in found if p.name[:2] in wanted]
    return found


def kernel_of(notebook: Path) -> str:
    meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    name = meta.get("kernelspec", {}).get("name")
    if not name:
        raise ValueError(f"{notebook}: metadata.kernelspec.name is missing; run `python -m nbhelpers.nb render`")
    return name


def check_kernels(names: set[str]) -> None:
    """Fail early, with the fix, when a notebook's kernel is not registered."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    missing = []
    for name in sorted(names):
        try:
            ksm.get_kernel_spec(name)
        except NoSuchKernel:
            missing.append(name)
    if missing:
        raise SystemExit(f"Jupyter kernel(s) {', '.join(missing)} are not registered: run `make setup` "
                         f"(JUPYTER_PATH={os.environ.get('JUPYTER_PATH', '')!r}).")


# Shown first in the summary table. Not CER/WER/MOS: whether they mean anything depends on the ASR model and the
# language (notebooks 03 and 06 say so beside them); a bare number here would not.
KEY_WORDS = ("loss", "rtf", "kept", "speedup")


def _key_metrics(record: dict | None, limit: int = 4) -> dict[str, Any]:
    """Up to ``limit`` scalar metrics of a stage record, quality/speed/loss figures first."""
    if not record:
        return {}
    flat = [(k, v) for k, v in record.get("metrics", {}).items() if isinstance(v, (int, float, str, bool))]
    flat.sort(key=lambda kv: not any(w in kv[0].lower() for w in KEY_WORDS))  # stable: keeps the stage's order
    return dict(flat[:limit])


def _format_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def run_notebook(notebook: Path, out_dir: Path, workspace: Path, profile: str,
                 kernel: str | None = None) -> NotebookResult:
    """Execute one notebook (on its own kernelspec, or ``kernel``); a failing cell is reported with its index and
    error instead of raising."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    result = NotebookResult(notebook.name, kernel or kernel_of(notebook))
    start = time.monotonic()
    try:
        papermill.execute_notebook(
            str(notebook), str(out_dir / notebook.name),
            parameters={"profile": profile, "workspace": str(workspace)},
            kernel_name=result.kernel, cwd=str(notebook.parent), progress_bar=False,
            request_save_on_cell_execute=True, start_timeout=120,
        )
        result.status = "ok"
    except PapermillExecutionError as err:
        result.status = "failed"
        result.error = f"cell {err.cell_index} (execution {err.exec_count}): {err.ename}: {err.evalue}"
    except Exception as err:  # kernel died, notebook unreadable, ...
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}"
    result.seconds = round(time.monotonic() - start, 1)
    records = read_records(workspace / "run_log.jsonl", stage=notebook.stem)
    if records:
        result.metrics = _key_metrics(records[-1])
        result.stage_status = records[-1].get("status")
    return result


# Which earlier stages a stage must have consumed an artefact of, in one run of the whole chain.
# 06 reaches 02 through 03 (it measures 03's teacher, which is 02's export).
REQUIRED_LINKS = {"02_parler_finetune": ("01_data_prep",), "03_parler_distill": ("01_data_prep", "02_parler_finetune"),
                  "04_vits_bangla_finetune": ("01_data_prep",), "07_pocket_tts_finetune": ("01_data_prep",),
                  "08_baselines": ("01_data_prep",),
                  "06_benchmark": ("01_data_prep", "03_parler_distill", "04_vits_bangla_finetune",
                                   "05_kokoro_synthesis", "07_pocket_tts_finetune", "08_baselines")}


def _values(obj: Any, *, named: bool = False) -> list[str]:
    """Every string value inside a record's inputs/outputs (nested dicts and lists flattened); with ``named``
    also the keys that name a written path (data prep's outputs are ``{dataset name: folder}``)."""
    if isinstance(obj, dict):
        keys = [str(k) for k, v in obj.items() if named and isinstance(v, str) and "/" in v]
        return [s for v in obj.values() for s in _values(v, named=named)] + keys
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _values(v, named=named)]
    return [obj] if isinstance(obj, str) else []


def _same_artefact(used: str, made: str) -> bool:
    if used == made:
        return True
    if "/" in used and "/" in made:  # a path: the same file/folder, or one inside the other
        a, b = used.rstrip("/") + "/", made.rstrip("/") + "/"
        return a.startswith(b) or b.startswith(a)
    return False


def chain_report(records: list[dict[str, Any]], profile: str) -> dict[str, Any]:
    """For each final stage record: which artefacts it consumed and which earlier stage/run wrote them; problems
    when a stage under a real profile read a smoke artefact, read the output of a run of another profile, or
    misses a link :data:`REQUIRED_LINKS` demands."""
    finished = [r for r in records if r.get("status") in ("done", "resume_needed")]
    stages, problems = [], []
    for i, rec in enumerate(finished):
        links, external = [], []
        for used in dict.fromkeys(_values(rec.get("inputs", {}))):  # each artefact once, in order
            producer = next((q for q in reversed(finished[:i]) if q["stage"] != rec["stage"]
                             and any(_same_artefact(used, made)
                                     for made in _values(q.get("outputs", {}), named=True))), None)
            if producer is None:
                external.append(used)
                continue
            links.append({"artefact": used, "stage": producer["stage"], "run_id": producer.get("run_id"),
                          "profile": producer.get("profile")})
            if producer.get("profile") != rec.get("profile"):
                problems.append(f"{rec['stage']} ({rec.get('profile')}) read {used} written by {producer['stage']} "
                                f"under profile {producer.get('profile')}")
        if profile != "smoke":
            smoke = [u for u in _values(rec.get("inputs", {})) if "smoke" in u or u == "tiny"]
            problems += [f"{rec['stage']} read a smoke artefact under {profile}: {u}" for u in smoke]
        missing = set(REQUIRED_LINKS.get(rec["stage"], ())) - {link["stage"] for link in links}
        problems += [f"{rec['stage']} consumed nothing written by {m} in this run" for m in sorted(missing)]
        stages.append({"stage": rec["stage"], "run_id": rec.get("run_id"), "status": rec["status"],
                       "profile": rec.get("profile"), "consumed": links, "external": external})
    return {"profile": profile, "stages": stages, "problems": problems, "ok": not problems}


def chain_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Chain report, profile {report['profile']}: {'ok' if report['ok'] else 'BROKEN'}", "",
             "| stage | run | consumed (from stage / run) | external inputs |", "|---|---|---|---|"]
    for s in report["stages"]:
        used = "; ".join(f"{c['artefact']} <- {c['stage']} / {c['run_id']}" for c in s["consumed"]) or "-"
        lines.append(f"| {s['stage']} | {s['run_id']} | {used.replace('|', '/')} | "
                     f"{', '.join(s['external']).replace('|', '/') or '-'} |")
    if report["problems"]:
        lines += ["", "## Problems", *[f"- {p}" for p in report["problems"]]]
    return "\n".join(lines) + "\n"


def summary_table(results: list[NotebookResult]) -> str:
    """A Markdown table: notebook, kernel, status, wall time, key metrics (and the error when failed)."""
    lines = ["| notebook | kernel | status | wall s | key metrics |", "|---|---|---|---:|---|"]
    for r in results:
        status = r.status if not r.stage_status or r.stage_status == "done" else f"{r.status} ({r.stage_status})"
        detail = _format_metrics(r.metrics) if r.status != "failed" else (r.error or "")
        lines.append(f"| {r.notebook} | {r.kernel} | {status} | {r.seconds:.1f} | {detail.replace('|', '/')} |")
    return "\n".join(lines)


def run_suite(profile: str = "smoke", only: list[str] | None = None, out: Path | None = None,
              workspace: Path | None = None, notebooks_dir: Path = NOTEBOOK_DIR,
              keep_going: bool = False, kernel: str | None = None) -> tuple[Path, list[NotebookResult]]:
    """Run the suite, each notebook in a fresh kernel (its kernelspec's, or ``kernel``: a replica platform
    kernel); returns the run folder and one result per notebook (later ones 'not run' after a failure unless
    ``keep_going``)."""
    from tqdm.auto import tqdm

    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    notebooks = discover(notebooks_dir, only)
    if not notebooks:
        raise SystemExit(f"no numbered notebooks (NN_name.ipynb) in {notebooks_dir}")
    out = Path(out or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}").resolve()
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    workspace = Path(workspace or out / "workspace").resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    os.environ.update({"TTS_WORKSPACE": str(workspace), "TTS_HEADLESS": "1", "PYTHONUNBUFFERED": "1",
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
                       "JUPYTER_PATH": os.environ.get("JUPYTER_PATH") or str(PROJECT_ROOT / "build" / "jupyter")})
    results = [NotebookResult(nb.name, kernel or kernel_of(nb)) for nb in notebooks]
    check_kernels({r.kernel for r in results})
    failed = False
    bar = tqdm(notebooks, desc=f"suite ({profile})", unit="nb")
    for i, nb in enumerate(bar):
        if failed and not keep_going:
            break
        bar.set_postfix_str(nb.name)
        results[i] = run_notebook(nb, executed, workspace, profile, kernel)
        failed = failed or results[i].status == "failed"
        tqdm.write(f"{nb.name}: {results[i].status} in {results[i].seconds:.1f} s"
                   + (f" -- {results[i].error}" if results[i].error else ""))
    table = summary_table(results)
    (out / "summary.md").write_text(f"# Suite run, profile {profile}\n\nworkspace: {workspace}\n\n{table}\n")
    (out / "summary.json").write_text(json.dumps(
        {"profile": profile, "workspace": str(workspace), "results": [asdict(r) for r in results]}, indent=1))
    return out, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the numbered notebooks in order")
    run.add_argument("--profile", default="smoke", choices=PROFILES)
    run.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,03")
    run.add_argument("--out", type=Path, help="run folder (default runs/<time>-<profile>)")
    run.add_argument("--workspace", type=Path, help="workspace to use (default <run folder>/workspace)")
    run.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR, help="folder with the notebooks")
    run.add_argument("--keep-going", action="store_true", help="run later notebooks after a failure")
    run.add_argument("--kernel", help="kernelspec to run every notebook on (default: each notebook's, python3)")
    sub.add_parser("list", help="list the numbered notebooks and their kernels")
    args = parser.parse_args(argv)
    if args.command == "list":
        for nb in discover():
            print(f"{nb.name:40s} {kernel_of(nb)}")
        return 0
    out, results = run_suite(args.profile, args.only.split(",") if args.only else None, args.out,
                             args.workspace, args.notebooks, args.keep_going, args.kernel)
    print(f"\n{summary_table(results)}\n\nrun folder: {out}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
