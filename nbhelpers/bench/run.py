"""The suite benchmark: test texts (and reference recordings) per language, every discovered system variant
measured with the harness, quality metrics per record, audio gallery, report, listening kit, stage record."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..measure.harness import append_record, measure_synthesis, read_records, set_metric
from ..measure.quality import DNSMOS_FIELDS
from ..paths import Workspace
from . import STAGE

# Fixed English test sentences (no reference recordings): short, everyday, with a number and a question.
ENGLISH_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back before five o'clock tomorrow.",
    "Is the train to the airport running on time today?",
    "She sells fresh bread at the corner shop every morning.",
    "Turn left at the second traffic light, then go straight.",
)


@dataclass
class TextSet:
    """Texts of one language, and reference recordings (audio, sr) where the test split has them."""

    language: str
    texts: list[str]
    references: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    source: str = ""
    manifest: str | None = None  # the prepared dataset's manifest the test split was read from

    @property
    def texts_sha256(self) -> str:
        """Short digest of the texts, so records of different runs can be matched on the same inputs."""
        return hashlib.sha256("\n".join(self.texts).encode()).hexdigest()[:16]


def text_sets(params: dict[str, Any], workspace: Workspace) -> dict[str, TextSet]:
    """Per profile language: the prepared dataset's test split (texts + reference audio) when data prep ran,
    else fixed sentences (English above; Bangla from stage 04's test sentences)."""
    import soundfile as sf

    from ..data.layout import DatasetPaths

    n = params["max_texts"]
    out = {}
    for lang in params["languages"]:
        name = params["datasets"].get(lang)
        rows, dataset = [], None
        if name:
            try:
                dataset = DatasetPaths.find(name, workspace)
                rows = dataset.read_manifest("test")[:n]
            except FileNotFoundError:
                rows = []
        if rows:
            refs = {}
            for r in rows:
                audio, sr = sf.read(r["audio_path"], dtype="float32", always_2d=True)
                refs[r["text"]] = (audio.mean(axis=1), sr)
            out[lang] = TextSet(lang, [r["text"] for r in rows], refs, f"{name} test split", str(dataset.manifest))
        elif lang == "en":
            out[lang] = TextSet(lang, list(ENGLISH_TEXTS[:n]), source="fixed English sentences")
        elif lang == "bn":
            from ..vits.config import TEST_SENTENCES

            out[lang] = TextSet(lang, list(TEST_SENTENCES[:n]), source="stage 04 test sentences")
        else:
            raise ValueError(f"no test texts for language {lang!r}: prepare dataset {name!r} with stage 01 or "
                             "remove the language from nbhelpers/profiles/bench.toml")
    return out


ASR_FIELDS = ("cer", "wer")
REFERENCE_FIELDS = ("mcd_db", "f0_rmse_hz", "vuv_error")
SCORED_HERE = "06_benchmark, from the saved WAVs on the main stack"


def quality_metrics(record: dict[str, Any], clips: list[tuple[str, np.ndarray, int]], textset: TextSet,
                    params: dict[str, Any], provided: dict[str, float] | None = None) -> None:
    """Fill ``record['quality']`` with means over the clips; every metric not computed gets its reason.
    ``provided``: metrics another stage already computed on these clips; a group of metrics (DNSMOS, ASR,
    reference) that it covers completely is not computed again, and its values replace computed ones."""
    from ..measure import quality as q

    provided = provided or {}

    def mean_of(name: str, values: list[float | None], reason: str) -> None:
        vals = [v for v in values if v is not None]
        set_metric(record, f"quality.{name}", float(np.mean(vals)) if vals else None, reason)

    def needed(group: tuple[str, ...]) -> bool:
        return not set(group) <= set(provided)

    if not params.get("dnsmos", True):
        for k in DNSMOS_FIELDS:
            set_metric(record, f"quality.{k}", None, "DNSMOS disabled in the profile")
    elif needed(DNSMOS_FIELDS):
        scores = [q.dnsmos(a, sr) for _, a, sr in clips]
        for k in DNSMOS_FIELDS:
            mean_of(k, [s[k] for s in scores], "DNSMOS failed")
    if not params.get("asr", True):
        for k in ASR_FIELDS:
            set_metric(record, f"quality.{k}", None, "ASR disabled in the profile")
    elif needed(ASR_FIELDS):
        heard = [q.transcribe(a, sr, textset.language, max_new_tokens=q.asr_token_cap(t),
                              asr_model=str(params.get("asr_model", q.OFFLINE_BASE))) for t, a, sr in clips]
        mean_of("cer", [q.cer(t, h) for (t, _, _), h in zip(clips, heard, strict=True)], "ASR failed")
        mean_of("wer", [q.wer(t, h) for (t, _, _), h in zip(clips, heard, strict=True)], "ASR failed")
    with_ref = [(t, a, sr) for t, a, sr in clips if t in textset.references]
    if with_ref and needed(REFERENCE_FIELDS):
        mcd, f0, vuv = [], [], []
        for t, a, sr in with_ref:
            ref, rsr = textset.references[t]
            mcd.append(q.mcd_dtw(ref, rsr, a, sr))
            m = q.f0_metrics(ref, rsr, a, sr)
            f0.append(m["f0_rmse_hz"])
            vuv.append(m["vuv_error"])
        mean_of("mcd_db", mcd, "MCD failed")
        mean_of("f0_rmse_hz", f0, "no frame voiced in both reference and synthesis")
        mean_of("vuv_error", vuv, "voicing comparison failed")
    elif not with_ref:
        for k in REFERENCE_FIELDS:
            set_metric(record, f"quality.{k}", None, f"no reference recording of these {textset.language} texts "
                       f"({textset.source})")
    for k in ("pesq_wb", "stoi"):
        set_metric(record, f"quality.{k}", None, "no time-aligned reference: free synthesis, not resynthesis")
    for k, v in provided.items():
        set_metric(record, f"quality.{k}", v)


def _slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text).strip("_")


def gallery_clips(variant: Any, lang: str, clips: list[tuple[str, np.ndarray, int]], out: Path
                  ) -> list[dict[str, Any]]:
    """Write clips to ``<out>/gallery/<system>__<backend>__<lang>_<i>.wav``; return their gallery entries."""
    import soundfile as sf

    entries = []
    for i, (text, audio, sr) in enumerate(clips):
        path = out / "gallery" / f"{_slug(variant.system)}__{_slug(variant.backend)}__{lang}_{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, sr)
        entries.append({"system": variant.system, "backend": variant.backend, "dtype": variant.dtype,
                        "language": lang, "text": text, "path": str(path), "kind": variant.kind})
    return entries


def score_saved(variant: Any, sets: dict[str, TextSet], params: dict[str, Any], out: Path, run_id: str
                ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A saved-audio variant (another stage's clips and record): keep that stage's speed/memory figures, score
    the clips here for every quality metric the stage did not compute (each metric's source goes into
    ``quality_source``), append the record and copy the clips into the gallery."""
    import soundfile as sf

    lang = variant.languages[0]
    try:
        saved = variant.saved()
        clips = []
        for text, path in saved.clips[: params["max_texts"]]:
            audio, sr = sf.read(path, dtype="float32", always_2d=True)
            clips.append((text, audio.mean(axis=1), int(sr)))
        known = sets.get(lang)
        ts = TextSet(lang, [t for t, _, _ in clips], known.references if known else {},
                     known.source if known else f"no {lang} test split")
        rec = json.loads(json.dumps(saved.record))
        rec.update(system=variant.system, backend=variant.backend, dtype=variant.dtype, run=run_id, stage=STAGE,
                   measured_on=saved.measured_on,
                   texts_sha256=ts.texts_sha256)
        rec["notes"] = "; ".join(x for x in (
            rec.get("notes"), f"saved audio of {saved.stage} ({saved.record['system']}, {variant.source})",
            f"quality scored on {len(clips)} of its {len(saved.clips)} clips") if x)
        quality_metrics(rec, clips, ts, params, provided=saved.quality)
        rec["quality_source"] = {k: saved.stage if k in saved.quality else SCORED_HERE
                                 for k, v in rec["quality"].items() if v is not None}
        append_record(rec, out / "records.jsonl")
    except Exception as e:  # noqa: BLE001 - unreadable saved audio is reported, not fatal
        return [], {f"{variant.label} [{lang}]": f"saved audio: {type(e).__name__}: {e}"}
    return gallery_clips(variant, lang, clips[: params["gallery_per_system"]], out), {}


def measure_variant(variant: Any, sets: dict[str, TextSet], params: dict[str, Any], out: Path, run_id: str
                    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Load one variant, measure it on each of its languages, add quality metrics, append the records and write
    its gallery clips. Returns (gallery entries, failures by label)."""
    import gc

    if variant.saved is not None:
        return score_saved(variant, sets, params, out, run_id)
    gallery, failures = [], {}
    try:
        loaded = variant.load()
    except Exception as e:  # noqa: BLE001 - a backend that cannot load is reported, not fatal
        return [], {variant.label: f"load: {type(e).__name__}: {e}"}
    measured = []  # every language is timed before any quality model (Whisper, DNSMOS) enters the process
    for lang in variant.languages:
        if lang not in sets:
            continue
        ts, clips = sets[lang], []
        try:
            rec = measure_synthesis(
                variant.system, variant.backend, lambda t, s=loaded.synth, lg=lang: s(t, lg), ts.texts,
                dtype=variant.dtype, device=variant.device, warmup=params["warmup"],
                repeats=params["repeats"], model=loaded.model, disk_paths=loaded.disk_paths,
                threads=loaded.threads, collect=clips, language=lang,
                notes="; ".join(x for x in (f"{variant.kind}: {variant.source}", loaded.notes,
                                            "own process" if params.get("isolate") else
                                            "shared process: peak RSS includes earlier systems") if x))
            measured.append((lang, ts, clips, rec))
        except Exception as e:  # noqa: BLE001
            failures[f"{variant.label} [{lang}]"] = f"{type(e).__name__}: {e}"
    for lang, ts, clips, rec in measured:
        try:
            rec["run"], rec["stage"] = run_id, STAGE
            rec["texts_sha256"] = ts.texts_sha256
            quality_metrics(rec, clips, ts, params)
            append_record(rec, out / "records.jsonl")
        except Exception as e:  # noqa: BLE001
            failures[f"{variant.label} [{lang}]"] = f"quality: {type(e).__name__}: {e}"
            continue
        gallery += gallery_clips(variant, lang, clips[: params["gallery_per_system"]], out)
    del loaded
    gc.collect()
    return gallery, failures


def _isolated(label: str, profile: str, ws: Workspace, run_id: str, overrides: dict[str, Any] | None
              ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run :func:`measure_variant` for one variant in a fresh interpreter, so its peak RSS is its own."""
    import os
    import subprocess
    import sys

    from ..paths import PROJECT_ROOT

    cmd = [sys.executable, "-m", "nbhelpers.bench", "measure-one", "--profile", profile, "--workspace",
           str(ws.root), "--variant", label, "--run", run_id, "--overrides", json.dumps(overrides or {})]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return [], {label: f"subprocess failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["gallery"], result["failures"]


def run_benchmark(profile: str = "auto", workspace: str | Path | Workspace | None = None, *,
                  systems: list[str] | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Benchmark every discovered system variant (each in its own process when the profile says ``isolate``);
    write records, gallery, report, listening kit and what notebook 06 shows (``view.json``) under
    ``<workspace>/bench/``, append the 06_benchmark stage record (listing them), and return a summary."""
    from tqdm.auto import tqdm

    from ..measure.listening import kit_items, make_kit
    from ..profiles import load_profile
    from ..records import append_stage_record, stage_run
    from .report import write_report
    from .systems import discover

    params = load_profile("bench", profile, overrides)
    suite = load_profile("suite", params["profile"])
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    with stage_run(STAGE, profile=params["profile"], workspace=ws):
        out = ws.stage_dir("bench")
        records_path = out / "records.jsonl"
        run_id = time.strftime("%Y%m%dT%H%M%S")
        sets = text_sets(params, ws)
        variants, skipped = discover(ws, params, systems or params.get("systems") or None)
        failures: dict[str, str] = {}
        gallery: list[dict[str, Any]] = []
        variants.sort(key=lambda v: v.saved is not None)  # saved audio last: scoring it loads no model to time
        for variant in tqdm(variants, desc="systems", unit="variant"):
            if params.get("isolate") and variant.saved is None:
                g, f = _isolated(variant.label, params["profile"], ws, run_id, overrides)
            else:
                g, f = measure_variant(variant, sets, params, out, run_id)
            gallery += g
            failures.update(f)
        records = [r for r in read_records(records_path) if r.get("run") == run_id or r.get("stage") != STAGE]
        report = write_report(records, gallery, skipped, failures, out, title=f"Benchmark {run_id} ({params['profile']})")
        kit_list = kit_items(gallery)
        kit = make_kit(kit_list, out / "listening", seed=suite["seed"]) if kit_list else {}
        summary = {"run": run_id, "records": len([r for r in records if r.get("run") == run_id]),
                   "variants": len(variants), "skipped": skipped, "failures": failures,
                   "report_md": str(report["markdown"]), "report_html": str(report["html"]),
                   "chart": str(report["chart"] or ""), "gallery": gallery,
                   "listening_page": str(kit.get("page", "")), "records_path": str(records_path)}
        from ..records import write_json
        from .view import run_view

        this_run = [r for r in records if r.get("run") == run_id]
        view = write_json(out / "view.json", run_view(this_run, gallery, skipped, failures, summary))
        summary["view"] = str(view)
        status = "done" if summary["records"] else "failed"
        append_stage_record(STAGE, profile=params["profile"], status=status, workspace=ws,
                            inputs={"systems": sorted({v.system for v in variants}),
                                    "models": {v.label: v.source for v in variants},
                                    "texts": {k: v.source for k, v in sets.items()},
                                    "test_splits": {k: v.manifest for k, v in sets.items() if v.manifest},
                                    "saved_audio": {v.label: v.source for v in variants if v.saved is not None}},
                            outputs={"records": records_path, "report_md": report["markdown"],
                                     "report_html": report["html"], "charts": report["chart"], "gallery": out / "gallery",
                                     "listening_page": kit.get("page"), "listening_key": kit.get("key"), "view": view},
                            metrics={"records": summary["records"], "variants": len(variants),
                                     "failures": len(failures), "skipped": skipped})
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


def measure_one(profile: str, workspace: str | Path, label: str, run_id: str,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Child side of the isolated mode: find the variant by label and measure it (prints nothing else)."""
    from ..profiles import load_profile
    from .systems import discover

    params = load_profile("bench", profile, overrides)
    ws = Workspace(workspace)
    variants, _ = discover(ws, params)
    match = [v for v in variants if v.label == label]
    if not match:
        raise SystemExit(f"variant {label!r} not found in {ws.root}; known: {[v.label for v in variants]}")
    gallery, failures = measure_variant(match[0], text_sets(params, ws), params, ws.stage_dir("bench"), run_id)
    return {"gallery": gallery, "failures": failures}


def profile_variants(profile: str = "auto", workspace: str | Path | Workspace | None = None, *, match: str = "",
                     calls: int = 3, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``torch.profiler`` traces of ``calls`` syntheses of the first test text per matching variant (label contains
    ``match``; saved-audio variants have nothing to trace, ONNX Runtime runs show as one opaque call): writes
    ``<workspace>/bench/profile/<variant>.trace.json`` + ``.top.json`` and ``profile.json`` (what notebook 06
    shows), returns the latter."""
    from ..measure.profiling import profile_calls
    from ..profiles import load_profile
    from ..records import write_json
    from .systems import discover

    params = load_profile("bench", profile, overrides)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    out = ws.stage_dir("bench", "profile")
    sets = text_sets(params, ws)
    variants, skipped = discover(ws, params, params.get("systems") or None)
    chosen = [v for v in variants if match in v.label and v.saved is None]
    if not chosen:
        raise ValueError(f"no variant to profile matches {match!r}; variants here: "
                         f"{[v.label for v in variants if v.saved is None] or 'none'} (skipped: {skipped})")
    results, failures = [], {}
    for variant in chosen:
        lang = next((lg for lg in variant.languages if lg in sets), None)
        if lang is None:
            failures[variant.label] = f"no test text in its languages {variant.languages}"
            continue
        text = sets[lang].texts[0]
        try:
            loaded = variant.load()
            summary = profile_calls(lambda i, s=loaded.synth, t=text, lg=lang: s(t, lg), calls, out,
                                    _slug(variant.label))
        except Exception as e:  # noqa: BLE001 - one variant that cannot load or run is reported, not fatal
            failures[variant.label] = f"{type(e).__name__}: {e}"
            continue
        results.append({"variant": variant.label, "language": lang, "text": text, **summary})
    view = {"profile": params["profile"], "calls": calls, "results": results, "failures": failures,
            "note": "self time per operator over the traced calls (CPU here; CUDA kernels on a GPU); ONNX Runtime "
                    "variants appear as one call because the profiler sees only PyTorch operators"}
    write_json(out / "profile.json", view)
    return view
