"""Stage 01, data prep: read a Kannada/Bangla speech corpus, clean, validate, split, annotate and export it
in the layout every trainer reads (:mod:`nbhelpers.data.layout`).

Entry points: :func:`prepare` (one source -> one dataset), :func:`run_profile` (every dataset of a profile,
plus the stage record), :func:`prepare_smoke_dataset` (a small espeak-ng dataset for other stages' tests).
Heavy modules are imported lazily so ``import nbhelpers.data`` stays cheap on both stacks.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..paths import Workspace
from .layout import SPLITS, DatasetPaths

if TYPE_CHECKING:
    from .pipeline import PrepareResult

__all__ = ["SPLITS", "DatasetPaths", "prepare", "prepare_smoke_dataset", "run_profile", "resolve_source"]
STAGE = "01_data_prep"


def prepare(*args: Any, **kwargs: Any) -> PrepareResult:
    """See :func:`nbhelpers.data.pipeline.prepare`."""
    from .pipeline import prepare as _prepare

    return _prepare(*args, **kwargs)


def resolve_source(source: str, language: str, workspace: Workspace, *, format: str = "auto",
                   n_sentences: int | None = None, damaged: bool = True,
                   sources_dir: str | os.PathLike | None = None) -> tuple[str, str]:
    """Turn a profile's source string into a readable path and format.

    ``embedded:<lang>`` builds the espeak-ng smoke corpus (layout = ``format``: openslr or ljspeech) under
    ``sources_dir`` (default ``<workspace>/data/_sources/``); ``openslr:<n>`` downloads and unpacks an OpenSLR
    resource there (GPU profiles, which have internet; on Kaggle the profile puts it outside /kaggle/working so
    the raw corpus does not count against the 20 GB output; its format is the profile's, e.g. libritts for
    ``openslr:60``, else openslr); ``url:<https://...archive>`` downloads and unpacks any zip/tar archive there
    (LJ Speech); ``hf:<id>`` is passed through; anything else is a local path.
    """
    base = Path(sources_dir) if sources_dir else workspace.root / "data" / "_sources"
    if source.startswith("embedded:"):
        from .corpus import build_smoke_corpus

        lang = source.split(":", 1)[1] or language
        layout = "openslr" if format in ("auto", "openslr") else format
        folder = base / f"{lang}_{layout}_{n_sentences or 'all'}{'_damaged' * damaged}"
        return str(build_smoke_corpus(lang, folder, layout=layout, n_sentences=n_sentences, damaged=damaged)), layout
    if source.startswith("openslr:"):
        from .download import download_openslr

        return str(download_openslr(source.split(":", 1)[1], base)), "openslr" if format == "auto" else format
    if source.startswith("url:"):
        from .download import download_url

        return str(download_url(source.split(":", 1)[1], base)), format
    return source, format


def prepare_smoke_dataset(language: str = "kn", workspace: Workspace | str | os.PathLike | None = None, *,
                          n_sentences: int | None = 12, name: str | None = None, damaged: bool = False,
                          workers: int = 1, annotate: bool = True, vad: str = "auto",
                          exports: tuple[str, ...] = ("parler", "ljspeech", "pocket")) -> DatasetPaths:
    """Build a small, complete prepared dataset quickly, for other stages' tests and demos.

    ``language`` is "kn" (Kannada) or "bn" (Bangla); the first ``n_sentences`` embedded sentences (None: all
    44) are spoken by espeak-ng with three voice variants (speakers ``<lang>m_00001``, ``<lang>f_00002``,
    ``<lang>m_00003``) and prepared exactly as the smoke profile does into ``<workspace>/data/<name>``
    (default name ``<language>_smoke``). Returns the :class:`DatasetPaths` (``PREPARED.json`` present).
    Takes ~2-5 s for 12 sentences on 2 cores (espeak output is cached across calls).

        from nbhelpers.data import prepare_smoke_dataset
        paths = prepare_smoke_dataset("kn", tmp_path / "ws", n_sentences=9)
        ds = datasets.load_from_disk(str(paths.parler_hf))      # train/validation/test, 44.1 kHz
    """
    from .clean import CleanConfig
    from .pipeline import prepare as _prepare

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    layout = "openslr" if language == "kn" else "ljspeech"
    src, fmt = resolve_source(f"embedded:{language}", language, ws, format=layout, n_sentences=n_sentences,
                              damaged=damaged)
    result = _prepare(src, name or f"{language}_smoke", language, workspace=ws, format=fmt,
                      clean=CleanConfig(vad=vad, annotate=annotate), workers=workers, exports=exports)
    return result.paths


def clean_config_from_profile(params: dict[str, Any]) -> Any:
    """A :class:`~nbhelpers.data.clean.CleanConfig` from the ``data`` profile's keys."""
    from dataclasses import fields

    from .clean import CleanConfig

    names = {f.name for f in fields(CleanConfig)}
    return CleanConfig(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in params.items() if k in names})


def run_profile(profile: str = "auto", workspace: Workspace | str | os.PathLike | None = None, *,
                only: list[str] | str | None = None, overrides: dict[str, Any] | None = None,
                record: bool = True, report: bool = True) -> dict[str, PrepareResult]:
    """Prepare every dataset the ``data`` profile lists (or ``only`` those: a list or a comma-separated string),
    write what notebook 01 shows (``data/_report/``, see :mod:`nbhelpers.data.report`; ``report``) and append
    the stage record, which lists those files in its outputs."""
    from ..profiles import load_profile
    from ..records import append_stage_record, stage_run
    from .pipeline import prepare as _prepare
    from .report import selected_datasets, write_report

    params = load_profile("data", profile, overrides)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    cfg = clean_config_from_profile(params)
    wanted = selected_datasets(params, only)
    results: dict[str, PrepareResult] = {}
    run = stage_run(STAGE, profile=params["profile"], workspace=ws, inputs={"datasets": wanted}) if record else None
    with run or contextlib.nullcontext():
        for name in wanted:
            spec = dict(params["sources"][name])
            src, fmt = resolve_source(spec["source"], spec["language"], ws, format=spec.get("format", "auto"),
                                      n_sentences=params.get("smoke_sentences"), damaged=params.get("smoke_damaged", True),
                                      sources_dir=params.get("sources_dir") or None)
            options = dict(spec.get("reader_options", {}))
            if fmt == "hf" or src.startswith("hf:"):
                options.setdefault("allow_hub", params["allow_hub"])
            results[name] = _prepare(
                src, name, spec["language"], workspace=ws, format=fmt, reader_options=options,
                clean=cfg, split_fractions=tuple(params["split_fractions"]),
                speaker_disjoint=spec.get("speaker_disjoint", params["speaker_disjoint"]),
                split_salt=params["split_salt"], bin_edges=params.get("bin_edges"),
                speaker_names=spec.get("speaker_names"), workers=params["workers"], strict=params["strict"],
                max_items=params.get("max_items", 0))
        if record:
            shown = write_report(results, ws) if report else {}
            metrics: dict[str, Any] = {}
            for name, r in results.items():
                metrics.update({f"{name}_kept": r.stats["kept"], f"{name}_rejected": r.stats["rejected"],
                                f"{name}_minutes": round(r.stats["hours"] * 60, 2),
                                f"{name}_seconds": round(r.seconds, 1)})
            append_stage_record(STAGE, profile=params["profile"], status="done", workspace=ws,
                                inputs={n: params["sources"][n]["source"] for n in wanted},
                                outputs={**{n: str(r.paths.root) for n, r in results.items()}, **shown},
                                metrics=metrics)
    return results

