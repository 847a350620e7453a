"""Stage 02 end to end, the same for the notebook (through its child processes) and the command line: the plan
(settings, memory), the tokenizer coverage check, training (or resuming), export and stage record, and speaking
one sentence with an export (the notebook's "Try it")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..budget import TimeBudget
from ..paths import Workspace, find_artifacts
from ..records import write_json
from .codes import cache_dir, dataset_fingerprint, worker_devices
from .coverage import check_prompt_coverage
from .export import finish
from .model import SOURCE_FILE, TINY, materialise_tiny, resolve_source
from .report import coverage_summary
from .train import (
    RunPaths,
    TrainResult,
    encode_sources,
    load_dataset,
    process_state,
    run_seed,
    train,
)

PLAN_FILE = "plan.json"
COVERAGE_FILE = "coverage.json"
TRY_DIR = "try_it"


def run_paths(workspace: Workspace, run: str = "run") -> RunPaths:
    return RunPaths(workspace.stage_dir("parler"), run)


def prompt_tokenizer_source(cfg: dict[str, Any], workspace: Workspace) -> str:
    """Where the prompt tokenizer of ``cfg['model']`` lives (the tiny model is materialised first)."""
    if cfg["model"] == TINY:
        return str(materialise_tiny(RunPaths(workspace.stage_dir("parler")).base_models, run_seed(cfg)))
    return resolve_source(cfg["model"])


def coverage_report(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None) -> dict[str, Any]:
    """Check that the model's prompt tokenizer represents the training transcripts (raises if not)."""
    from transformers import AutoTokenizer

    ws = workspace or Workspace()
    data = load_dataset(dataset if dataset is not None else cfg["dataset"], ws)
    tokenizer = AutoTokenizer.from_pretrained(prompt_tokenizer_source(cfg, ws))
    return check_prompt_coverage(tokenizer, list(data["train"]["text"]))


def dataset_name(cfg: dict[str, Any], dataset: Any = None) -> str:
    """What the run trains on, for records and reports: the dataset given (a name or folder) or the profile's."""
    return str(dataset) if isinstance(dataset, (str, Path)) else cfg["dataset"]


def write_coverage(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None,
                   run: str = "run", name: str | None = None) -> tuple[dict[str, Any], Path]:
    """:func:`coverage_report` for the notebook: written to ``<workspace>/parler/<run>/coverage.json`` with the
    dataset's split sizes; returns (report, path). Raises, writing nothing, when the tokenizer cannot
    represent the transcripts."""
    ws = workspace or Workspace()
    data = load_dataset(dataset if dataset is not None else cfg["dataset"], ws)
    report = coverage_report(cfg, workspace=ws, dataset=data)
    path = write_json(run_paths(ws, run).run_dir / COVERAGE_FILE,
                      coverage_summary(report, data, name or dataset_name(cfg, dataset)))
    return report, path


def run_stage(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None, run: str = "run",
              budget: TimeBudget | None = None, stop_after: int | None = None) -> tuple[TrainResult, dict[str, Any]]:
    """Coverage check, train/resume, then export + record on the main process; returns (result, outputs).
    Under ``accelerate launch`` every process trains; the others return as soon as training ends."""
    ws = workspace or Workspace()
    state = process_state()
    name = dataset_name(cfg, dataset)
    data = load_dataset(dataset if dataset is not None else cfg["dataset"], ws)
    with state.main_process_first():  # the main process materialises the tiny model (if any) first
        if state.is_main_process:
            coverage, _ = write_coverage(cfg, workspace=ws, dataset=data, run=run, name=name)
        else:
            coverage = coverage_report(cfg, workspace=ws, dataset=data)
    result = train(cfg, workspace=ws, dataset=data, run=run, budget=budget, stop_after=stop_after)
    outputs: dict[str, Any] = {}
    if state.is_main_process:
        extra = {"dataset": name, **({"mix": dict(cfg["mix"])} if cfg["mix"] else {}),
                 "data_fingerprint": dataset_fingerprint(data),
                 "coverage_unknown_share": coverage["unknown_share"],
                 "coverage_byte_fallback_share": coverage["byte_fallback_share"]}
        outputs = finish(result, cfg, workspace=ws, extra=extra)
    return result, outputs


def encode(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None) -> dict[str, Any]:
    """Only encode the audio codes of the run's dataset and its mix (train, validation, test) into the workspace's
    code cache, reusing attached caches: a Kaggle session can encode and the next one train (it finds the codes in
    the attached output). Writes and returns ``parler/codes/encoded.json``."""
    import torch

    from .model import get_bundle

    ws = workspace or Workspace()
    root = RunPaths(ws.stage_dir("parler")).codes
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bundle = get_bundle(cfg["model"], workspace_dir=RunPaths(ws.stage_dir("parler")).base_models, seed=run_seed(cfg))
    bundle.model.to(device)
    sources = [dataset if dataset is not None else cfg["dataset"], *cfg["mix"]]
    done = {str(source): {"folder": str(cache_dir(root, bundle, data)),
                          "splits": {name: len(rows) for name, rows in codes.items()}}
            for source, (data, codes) in zip(sources, encode_sources(bundle, cfg, ws, sources, splits=None,
                                                                     device=device), strict=True)}
    info = {"model": cfg["model"], "codec": bundle.source, "device": device,
            "encode_workers": len(worker_devices(device, cfg["encode_workers"])), "datasets": done}
    write_json(root / "encoded.json", info)
    return info


def newest_export(workspace: Workspace | None = None) -> Path:
    """The newest stage-02 export (``parler/<run>/export/``) in the workspace or under /kaggle/input."""
    found = [p.parent for p in find_artifacts(f"parler/*/export/{SOURCE_FILE}", workspace)]
    if not found:
        raise FileNotFoundError("no fine-tuned model found (parler/<run>/export/ in the workspace or a Kaggle input): "
                                "run `python -m nbhelpers.parler train` (notebook 02) first, or pass --export")
    return max(found, key=lambda p: p.stat().st_mtime)


def speak(cfg: dict[str, Any], *, text: str, description: str | None = None, export: str | None = None,
          out: str | Path, workspace: Workspace | None = None, seed: int = 0,
          max_seconds: float | None = None, stream_dir: str | Path | None = None) -> dict[str, Any]:
    """Speak ``text`` with ``description`` (default: the profile's) using a stage-02 export (default: the
    newest); writes the WAV atomically to ``out`` plus ``<out>.json`` (text, description, model, seconds).
    ``stream_dir``: also write each audio chunk as it is generated, ``chunk_0000.wav`` ... (what the notebook's
    player plays before the sentence is finished), and the time to first audio."""
    import numpy as np
    import torch

    from .model import load_bundle
    from .synth import ParlerSynth, describe, fastest_settings, shortest_seconds
    from .train import write_wav

    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    ws = workspace or Workspace()
    source = Path(export) if export else newest_export(ws)
    description = description if description and description.strip() else cfg["sample_description"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    synth = ParlerSynth(load_bundle(str(source)), fastest_settings(device), device=device,
                        preset_dir=ws.stage_dir("parler", "presets"))
    seconds = float(max_seconds) if max_seconds else 2 * cfg["sample_max_seconds"]
    started = time.perf_counter()
    floor = shortest_seconds([text], cfg["sample_max_chars_per_second"])
    if stream_dir is not None:
        parts, first = [], None
        for part in synth.stream(text, description, max_seconds=max(seconds, floor), min_seconds=floor, seed=seed):
            write_wav(Path(stream_dir) / f"chunk_{len(parts):04d}.wav", part, synth.bundle.sampling_rate)
            first = first if first is not None else round(time.perf_counter() - started, 3)
            parts.append(part)
        audio = np.concatenate(parts)
    else:
        audio = synth.synthesize([text], description, max_seconds=max(seconds, floor), min_seconds=floor,
                                 seed=seed)[0]
    out = write_wav(Path(out), audio, synth.bundle.sampling_rate)
    report = synth.report()
    info = {"text": text, "description": description, "model": str(source), "wav": str(out),
            "audio_seconds": round(len(audio) / synth.bundle.sampling_rate, 3),
            "generation_seconds": round(time.perf_counter() - started, 3), "seed": seed,
            "synthesis_path": describe(report) + (", streamed" if stream_dir else ""), "synthesis": report}
    if stream_dir is not None:
        info.update(chunks=len(parts), first_audio_seconds=first)
    write_json(out.with_name(out.name + ".json"), info)
    return info
