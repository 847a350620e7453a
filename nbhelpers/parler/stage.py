"""Stage 02 end to end, the same for the notebook and the command line: tokenizer coverage check, training
(or resuming), export and stage record."""

from __future__ import annotations

from typing import Any

from ..budget import TimeBudget
from ..paths import Workspace
from .codes import dataset_fingerprint
from .coverage import check_prompt_coverage
from .export import finish
from .model import TINY, materialise_tiny, resolve_source
from .train import RunPaths, TrainResult, load_dataset, run_seed, train


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


def run_stage(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None, run: str = "run",
              budget: TimeBudget | None = None, stop_after: int | None = None) -> tuple[TrainResult, dict[str, Any]]:
    """Coverage check, train/resume, then export + record on the main process; returns (result, outputs)."""
    ws = workspace or Workspace()
    data = load_dataset(dataset if dataset is not None else cfg["dataset"], ws)
    coverage = coverage_report(cfg, workspace=ws, dataset=data)
    result = train(cfg, workspace=ws, dataset=data, run=run, budget=budget, stop_after=stop_after)
    outputs: dict[str, Any] = {}
    from accelerate import PartialState

    if PartialState().is_main_process:
        extra = {"dataset": str(cfg["dataset"]), "data_fingerprint": dataset_fingerprint(data),
                 "coverage_unknown_share": coverage["unknown_share"],
                 "coverage_byte_fallback_share": coverage["byte_fallback_share"]}
        outputs = finish(result, cfg, workspace=ws, extra=extra)
    return result, outputs

