"""Shared pieces of every training loop: a data order that can resume mid-epoch, RNG capture, and
saving/loading the whole training state through atomic checkpoints so that a resumed run continues
bit-for-bit where the killed one stopped (the nanoGPT recipe, made crash-safe)."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import (
    DiskFullError,
    NotWritableError,
    ensure_writable,
    latest_checkpoint,
    read_marker,
    save_checkpoint,
)
from .measure.profiling import StepProfiler, record_fields
from .records import write_json

STATE_FILE = "training_state.pt"


@dataclass
class RunPaths:
    """Folders of one training run, ``<stage folder>/<run>/``; stages add their own (code caches, tokenizers)."""

    root: Path  # the stage folder, e.g. <workspace>/parler
    run: str = "run"

    @property
    def run_dir(self) -> Path:
        return self.root / self.run

    checkpoints = property(lambda self: self.run_dir / "checkpoints")
    samples = property(lambda self: self.run_dir / "samples")
    history = property(lambda self: self.run_dir / "history.json")
    export = property(lambda self: self.run_dir / "export")


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Shuffled indices, a fresh permutation per epoch derived from (seed, epoch) alone, with a position
    that is part of the checkpoint: resuming skips exactly the samples already consumed.

    ``batches`` optionally groups indices (e.g. length-grouped batches); the sampler then yields batches
    (lists of indices) in a per-epoch shuffled order instead of single indices.
    """

    def __init__(self, n: int, seed: int = 0, batches: list[list[int]] | None = None,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.batches, self.shuffle = n, seed, batches, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0

    def _order(self) -> list:
        items: list = self.batches if self.batches is not None else list(range(self.n))
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            items = [items[i] for i in torch.randperm(len(items), generator=g).tolist()]
        # every rank sees the same number of items: drop the tail that does not divide evenly
        usable = len(items) - len(items) % self.world_size
        return items[self.rank:usable:self.world_size]

    def __len__(self) -> int:
        return len(self._order())

    def __iter__(self) -> Iterator:
        order = self._order()
        while self.position < len(order):
            item = order[self.position]
            self.position += 1
            yield item
        self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"checkpoint was written with data seed {state['seed']}, this run uses {self.seed}")
        self.epoch, self.position = state["epoch"], state["position"]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(directory: str | Path, step: int, *, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                        scaler: Any = None, sampler: ResumableSampler | None = None,
                        extra: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                        keep: int | None = 2, trainable_only: bool = False,
                        rng_per_process: list[dict[str, Any]] | None = None,
                        write_more: Callable[[Path], None] | None = None) -> Path:
    """Atomically save everything a resume needs as checkpoint ``step`` under ``directory``.

    ``trainable_only`` stores only parameters with requires_grad (LoRA adapters, a partly frozen model)
    plus buffers, which keeps checkpoints of large frozen bases small. ``rng_per_process``: every process's RNG
    streams (several processes draw their own dropout/noise); ``write_more(folder)`` adds the trainer's own files
    (written after the state, inside the same atomic checkpoint).
    """
    weights = model.state_dict()
    if trainable_only:
        keep_names = {n for n, p in model.named_parameters() if p.requires_grad}
        keep_names |= {n for n, _ in model.named_buffers()}
        weights = {k: v for k, v in weights.items() if k in keep_names}
    state = {
        "step": step,
        "model": weights,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "sampler": sampler.state_dict() if sampler is not None else None,
        "rng": rng_per_process[0] if rng_per_process else rng_state(),
        "extra": extra or {},
    }
    if rng_per_process:
        state["rng_per_process"] = rng_per_process

    def write(folder: Path) -> None:
        torch.save(state, folder / STATE_FILE)
        if write_more is not None:
            write_more(folder)
    return save_checkpoint(directory, step, write, meta={"trainable_only": trainable_only, **(meta or {})}, keep=keep)


def _load_into(state: dict[str, Any], checkpoint: Path, model: torch.nn.Module, objects: dict[str, Any]) -> list[str]:
    """Put a saved state's weights and the optimiser/scheduler/scaler/sampler states into the given objects;
    returns the model's missing keys (a trainable-only checkpoint leaves the frozen ones out)."""
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected:
        raise RuntimeError(f"{checkpoint}: checkpoint has weights this model lacks: {unexpected[:5]}...")
    for key, obj in objects.items():
        if obj is not None and state.get(key) is not None:
            obj.load_state_dict(state[key])
    return missing


def load_training_state(checkpoint: str | Path, *, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                        scaler: Any = None, sampler: ResumableSampler | None = None,
                        restore_rng: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_training_state` into the given objects; returns
    ``{"step": ..., "extra": ...}``."""
    state = torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)
    missing = _load_into(state, Path(checkpoint), model, {"optimizer": optimizer, "scheduler": scheduler,
                                                          "scaler": scaler, "sampler": sampler})
    if restore_rng:
        set_rng_state(state["rng"])
    return {"step": state["step"], "extra": state["extra"], "missing_keys": missing}


def resume_point(*directories: str | Path) -> Path | None:
    """The newest complete training checkpoint among ``directories`` (workspace and /kaggle/input copies)."""
    return latest_checkpoint([d for d in directories if d is not None])


def process_rng(state: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    """The RNG streams process ``rank`` of ``world`` resumes with: its own when the checkpoint holds one per process
    (written by as many processes), else the single saved state (a one-process checkpoint)."""
    per_process = state.get("rng_per_process")
    if per_process and len(per_process) == world:
        return per_process[rank]
    if world > 1:
        raise ValueError(f"this checkpoint holds the RNG of {len(per_process or [1])} process(es), not {world}: "
                         "resume with the same number of processes (GPUs) it was written with")
    return state["rng"]


PROFILE_DIR = "profile"  # <run>/profile/<label>.trace.json and .top.json when a trainer profiles steps


@dataclass
class TrainResult:
    """How one training session of a :class:`Run` ended (Parler, distillation and Pocket TTS)."""

    status: str  # "done" or "resume_needed"
    step: int
    history: list[dict[str, Any]]
    paths: RunPaths
    checkpoint: Path | None = None  # the newest complete checkpoint: written this session or resumed from
    metrics: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # what was trained (Parler: a PeftModel in LoRA modes)
    bundle: Any = None  # Parler: the model with its tokenizers and codec (adapters still attached in LoRA modes)


class Run:
    """The state a training loop shares with the suite: the step, the loss history, resume from the newest complete
    checkpoint (refused when it was written with other settings), saving with retention, the stop rule (the
    session budget, ``stop_after``, the last step), the progress bar, timing and the history file.

    Each trainer keeps its own loop top to bottom in its file (batches, loss, logging, evaluation) and calls
    :meth:`resume` and :meth:`restore_rng` before it, :meth:`end_step` after every optimiser step and
    :meth:`finish` at the end. ``meta`` holds the settings a resumed run must share with the one that saved."""

    def __init__(self, paths: RunPaths, *, meta: dict[str, Any], max_steps: int, save_every: int, keep: int,
                 budget: Any, stop_after: int | None = None, main: bool = True, rank: int = 0, world: int = 1,
                 desc: str = "train", profile_steps: int = 0):
        self.paths, self.meta, self.max_steps, self.save_every, self.keep = paths, meta, max_steps, save_every, keep
        self.budget, self.stop_after, self.main, self.rank, self.world = budget, stop_after, main, rank, world
        self.desc = desc
        # profile_steps > 0: torch.profiler traces that many optimiser steps (after one untraced) on the main process
        self.profiler = StepProfiler(profile_steps if main else 0, paths.run_dir / PROFILE_DIR,
                                     desc.replace(" ", "_"))
        self.step, self.history, self.status = 0, [], "done"
        self.checkpoint: Path | None = None
        self.steps_run, self.first_step_seconds = 0, None
        self._rng: dict[str, Any] | None = None

    def resume(self, directories: list[Path], *, model: torch.nn.Module, **objects: Any) -> dict[str, Any] | None:
        """Load the newest complete checkpoint among ``directories`` into ``model`` and ``objects`` (optimizer,
        scheduler, scaler, sampler) and take its step and history; returns its ``extra`` (None: a fresh start).
        The RNG streams wait for :meth:`restore_rng`."""
        found = resume_point(*directories)
        if found is None:
            return None
        saved = (read_marker(found) or {}).get("meta", {})
        clash = {k: (saved.get(k), v) for k, v in self.meta.items() if saved.get(k) != v}
        if clash:
            raise ValueError(f"checkpoint {found} was written with other settings {clash} (saved, now): "
                             f"resume with the same settings, or start a new run name")
        state = torch.load(found / STATE_FILE, map_location="cpu", weights_only=False)
        _load_into(state, found, model, objects)
        self.step, self.history, self.checkpoint = state["step"], state["extra"].get("history", []), found
        self._rng = process_rng(state, self.rank, self.world)
        return state["extra"]

    def restore_rng(self) -> None:
        """Put the resumed checkpoint's RNG streams back: call it last, after everything that draws random numbers
        while setting up (model wrapping, compilation), so the first step draws what the saved run would have."""
        if self._rng is not None:
            set_rng_state(self._rng)
            self._rng = None

    def save(self, *, model: torch.nn.Module, extra: dict[str, Any] | None = None, trainable_only: bool = False,
             write_more: Callable[[Path], None] | None = None, gather: Callable[[list], list] | None = None,
             **objects: Any) -> Path | None:
        """Checkpoint the current step (the main process writes; every process's RNG is saved, through ``gather``
        when there are several) with the history in ``extra``; returns the folder (None on other processes)."""
        rngs = gather([rng_state()]) if self.world > 1 and gather is not None else [rng_state()]
        if not self.main:
            return None
        return save_training_state(self.paths.checkpoints, self.step, model=model, **objects,
                                   extra={"history": self.history, **(extra or {})}, meta=self.meta, keep=self.keep,
                                   trainable_only=trainable_only, rng_per_process=rngs, write_more=write_more)

    def batches(self, sampler: ResumableSampler) -> Iterator:
        """The sampler's batches without end, epoch after epoch (its position is part of every checkpoint)."""
        while True:
            yield from sampler

    def start(self, device: torch.device) -> None:
        """Start the clock, the progress bar and the peak-memory count of the steps to come."""
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self._t0 = time.time()
        self._bar = tqdm(total=self.max_steps, initial=self.step, desc=self.desc, disable=not self.main)

    def end_step(self, entry: dict[str, Any], save: Callable[[], Path | None], **postfix: str) -> bool:
        """After optimiser step ``self.step``: record ``entry``, advance the bar and the budget, save when due
        (``save_every``, a stop, the last step) and say whether the loop must stop now (status resume_needed)."""
        self.steps_run += 1
        self.profiler.step()
        self.first_step_seconds = self.first_step_seconds or time.time() - self._t0
        self.history.append(entry)
        self._bar.update(1)
        if postfix:
            self._bar.set_postfix(**postfix)
        self.budget.tick()
        stop = self.step < self.max_steps and (self.budget.should_stop() or
                                               (self.stop_after is not None and self.step >= self.stop_after))
        if stop or (self.save_every > 0 and self.step % self.save_every == 0) or self.step == self.max_steps:
            self.checkpoint = save() or self.checkpoint
        if stop:
            self.status = "resume_needed"
        return stop

    def finish(self, device: torch.device) -> dict[str, Any]:
        """Close the bar, write the history (main process) and return the run's common figures: step, max_steps,
        seconds per step of this session, the first step's seconds, final loss and peak GPU memory."""
        self._bar.close()
        if self.main:
            write_json(self.paths.history, self.history)
        elapsed = time.time() - self._t0
        out: dict[str, Any] = {
            "step": self.step, "max_steps": self.max_steps,
            "seconds_per_step": round(elapsed / self.steps_run, 4) if self.steps_run else None,
            "first_step_seconds": round(self.first_step_seconds, 3) if self.first_step_seconds else None}
        if self.history:
            out["final_loss"] = self.history[-1]["loss"]
        if device.type == "cuda":
            out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        return {**out, **record_fields(self.profiler.close())}  # the profiled steps' trace and top operators


UTILISATION_INTERVAL_S = 1.0  # NVML averages over ~0.1-1 s; a training step is seconds long


def run_guarded(stage: str, profile: str, workspace: Any, command: Callable[[], int]) -> int:
    """Run a training stage's command line: first check that the workspace can be written (a read-only one is
    refused before any training time is spent), then ``command()`` inside :func:`records.stage_run` (``started``,
    then exactly one final record; an error becomes ``failed``), with GPU utilisation (NVML) and peak RSS sampled
    around the whole command and added to that record (``null`` with the reason off CUDA). A full disk or an
    unwritable folder prints its one explanation and returns 1 instead of a traceback. The main process holds the stage's workspace lock
    (``paths.stage_lock``) meanwhile: a second run of the stage on the same workspace is refused at once, with no
    record (the first run is still going)."""
    from .measure.harness import Sampler
    from .paths import StageBusyError, stage_lock
    from .records import stage_run

    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch, one lock and one record
    gpu = int(os.environ.get("LOCAL_RANK", "0")) if torch.cuda.is_available() else None
    try:
        ensure_writable(workspace.root)
        with stage_lock(workspace, stage) if main else contextlib.nullcontext():
            with stage_run(stage, profile=profile, workspace=workspace, main=main) as run:
                if not main:
                    return command()
                with Sampler(gpu, interval=UTILISATION_INTERVAL_S) as sampler:
                    run.extra_metrics = sampler.training_metrics
                    return command()
    except StageBusyError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        return 1
    except (DiskFullError, NotWritableError) as err:
        print(f"\nERROR: {err}", file=sys.stderr)  # own line: a progress bar may still hold the current one
        return 1


def length_grouped_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Batches of indices with similar lengths (sorted, then cut), so padding stays small; the sampler
    shuffles the batch order every epoch. The last, smaller batch is dropped when it would be ragged."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def mixed_batches(lengths: list[list[int]], weights: list[float], batch_size: int, seed: int) -> list[list[int]]:
    """Length-grouped batches of several datasets, as indices into their concatenation, each dataset giving a share
    of the batches proportional to its weight. The total is the datasets' own batch count; a dataset's batches are
    repeated (upsampled) or a seeded subset is taken (downsampled) to reach its share. One dataset of weight 1 gives
    exactly :func:`length_grouped_batches`."""
    import random

    per, offset = [], 0
    for n_lengths in lengths:
        per.append([[offset + i for i in b] for b in length_grouped_batches(n_lengths, batch_size)])
        offset += len(n_lengths)
    total = sum(len(b) for b in per)
    exact = [total * w / sum(weights) for w in weights]
    targets = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: targets[i] - exact[i])[:total - sum(targets)]:
        targets[i] += 1  # largest remainders first: the shares add up to the total
    rng, out = random.Random(seed), []
    for batches, n in zip(per, targets, strict=True):
        repeats, rest = divmod(n, len(batches)) if batches else (0, 0)
        out += batches * repeats + rng.sample(batches, rest)
    return out
