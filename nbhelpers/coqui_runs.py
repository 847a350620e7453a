"""Coqui ``Trainer`` runs that stop on a time budget without killing the kernel and resume in the next session;
shared by stage 04 (VITS) and stage 08 (FastSpeech2 and HiFi-GAN baselines).

``Trainer.fit()`` turns Ctrl-C into ``os._exit`` (the kernel dies) and any error into ``sys.exit(1)`` after
deleting a run folder without checkpoints, so :func:`fit_budgeted` drives ``Trainer._fit()`` itself: a step-end
callback polls the time budget (and an optional step limit), saves a checkpoint and raises a private exception
that is caught here, so the call simply returns. The next session continues with ``continue_path`` (optimizer,
scheduler and the step counter continue): :func:`find_resumable_run` finds that run."""

from __future__ import annotations

import os
import shutil
import stat
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .budget import TimeBudget
from .checkpoint import out_of_space
from .paths import Workspace, find_artifacts
from .profiles import load_profile

INCOMPLETE = "incomplete"  # subfolder of a run holding set-aside checkpoints: coqui only globs the run folder itself


class _StopTraining(Exception):
    """Raised by the step-end callback after saving a checkpoint; never escapes this module."""


@dataclass
class Fit:
    """How one budgeted ``Trainer`` session ended."""

    reason: str  # "max_steps", "budget", "epochs", "interrupted"
    run_dir: Path
    start_step: int
    end_step: int
    seconds: float
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)
    profile: dict[str, Any] | None = None  # the profiled steps' summary (profile_steps > 0)

    @property
    def status(self) -> str:
        """The stage-record status: a budget stop or an interrupt leaves work for the next session."""
        return "resume_needed" if self.reason in ("budget", "interrupted") else "done"


def checkpoint_step(path: Path) -> int:
    """N of a coqui ``checkpoint_N.pth``."""
    return int(path.stem.rsplit("_", 1)[-1])


def _loads(path: Path) -> bool:
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)
        return isinstance(data, dict) and "model" in data and "step" in data
    except Exception:  # truncated zip, pickle errors, ... all mean "not a usable checkpoint"
        return False


def resumable_checkpoint(run: Path) -> Path | None:
    """The newest loadable ``checkpoint_N.pth`` of a run (newer unreadable ones, saves killed mid-write, are
    skipped); reads only, so it is safe on a read-only input."""
    if not (run / "config.json").is_file():
        return None
    for ckpt in sorted(run.glob("checkpoint_*.pth"), key=checkpoint_step, reverse=True):
        if _loads(ckpt):
            return ckpt
    return None


def set_aside_partials(run: Path) -> Path | None:
    """In a run folder of the workspace: move checkpoints newer than the resumable one into ``incomplete/`` with a
    warning, so neither coqui's search for the newest checkpoint (``*.pth``) nor its ``keep_n_checkpoints``
    (``checkpoint_*``, which would count them and delete an older good one) sees them; returns the resumable
    checkpoint."""
    keep = resumable_checkpoint(run)
    for ckpt in run.glob("checkpoint_*.pth"):
        if keep is None or checkpoint_step(ckpt) > checkpoint_step(keep):
            aside = run / INCOMPLETE / ckpt.name
            aside.parent.mkdir(exist_ok=True)
            warnings.warn(f"{ckpt} is incomplete or corrupt (interrupted save?); moved to {aside}", stacklevel=2)
            ckpt.rename(aside)
    return keep


def find_resumable_run(workspace: Workspace, runs: str) -> Path | None:
    """The run with the highest resumable step under ``<workspace>/<runs>/`` or the same path under /kaggle/input.
    A run found in an input is copied into the workspace first (coqui writes into the folder it continues; inputs
    are never modified): into a temporary folder renamed when complete, so a copy killed halfway is never taken
    for the run."""
    best: tuple[int, Path] | None = None
    for config_json in find_artifacts(f"{runs}/*/config.json", workspace):
        ckpt = resumable_checkpoint(config_json.parent)
        if ckpt and (best is None or checkpoint_step(ckpt) > best[0]):
            best = (checkpoint_step(ckpt), config_json.parent)
    if best is None:
        return None
    run = best[1]
    local = workspace.root / runs
    local.mkdir(parents=True, exist_ok=True)
    if local not in run.parents:
        target = local / run.name
        if not target.exists():
            tmp = local / f".{run.name}.copy-tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            with out_of_space(f"a copy of {run}", tmp, cleanup=tmp):
                shutil.copytree(run, tmp)
            for path in (tmp, *tmp.rglob("*")):  # an input's read-only modes must not make the copy read-only
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
            os.replace(tmp, target)
        run = target
    set_aside_partials(run)
    return run


def session_budget(params: dict[str, Any]) -> TimeBudget:
    """This session's budget: the profile's ``budget_seconds`` when set, else the suite budget (Kaggle: 12 h
    counted from the session start, minus the margin for the final save)."""
    if params.get("budget_seconds"):
        return TimeBudget(params["budget_seconds"], params.get("budget_margin_seconds", 0))
    return TimeBudget.from_profile(load_profile("suite", params["profile"]))


def _guard_saves(trainer: Any) -> None:
    """Route every coqui checkpoint save of ``trainer`` (periodic, final, budget stop) through
    :func:`~nbhelpers.checkpoint.out_of_space`: coqui writes ``checkpoint_N.pth`` in place, so on a full disk the
    partial file is removed and the error names the newest complete checkpoint and the fix."""
    save = trainer.save_checkpoint

    def guarded() -> None:
        run = Path(trainer.output_path)
        partial = run / f"checkpoint_{trainer.total_steps_done}.pth"
        with out_of_space(f"checkpoint {partial.name}", run, cleanup=partial,
                          last=lambda: resumable_checkpoint(run)):
            save()

    trainer.save_checkpoint = guarded


def fit_budgeted(config: Any, model: Any, train_samples: list, eval_samples: list, *, budget: TimeBudget,
                 max_steps: int | None = None, continue_dir: Path | None = None, desc: str = "training",
                 profile_steps: int = 0) -> Fit:
    """Run (or continue, from ``continue_dir``) coqui training until the budget runs out, ``max_steps`` total steps
    are done or the epochs end; always leaves a checkpoint and returns normally (also on Ctrl-C / notebook
    interrupt). One progress bar counts the steps. ``profile_steps > 0``: torch.profiler traces that many steps
    (after one untraced) into ``<run>/profile/`` and the Fit carries the summary."""
    from tqdm.auto import tqdm
    from trainer import Trainer, TrainerArgs

    from .measure.profiling import StepProfiler

    state: dict[str, Any] = {"reason": "epochs", "bar": None, "profiler": None}

    def on_step_end(trainer: Any) -> None:
        state["profiler"].step()
        budget.tick()
        state["bar"].update(1)
        if max_steps is not None and trainer.total_steps_done >= max_steps:
            state["reason"] = "max_steps"
        elif budget.should_stop():
            state["reason"] = "budget"
        else:
            return
        trainer.save_checkpoint()
        raise _StopTraining

    t0 = time.time()
    trainer = Trainer(TrainerArgs(continue_path=str(continue_dir) if continue_dir else ""), config,
                      output_path=config.output_path, model=model, train_samples=train_samples,
                      eval_samples=eval_samples, parse_command_line_args=False,
                      callbacks={"on_train_step_end": on_step_end})
    _guard_saves(trainer)
    state["profiler"] = StepProfiler(profile_steps, Path(trainer.output_path) / "profile", desc.replace(" ", "_"))
    start_step = trainer.total_steps_done
    state["bar"] = tqdm(desc=desc, unit="step", initial=start_step, total=max_steps)
    budget.tick()
    try:
        trainer._fit()  # not fit(): see the module docstring
        trainer.save_checkpoint()
    except _StopTraining:
        pass
    except KeyboardInterrupt:
        state["reason"] = "interrupted"
        trainer.save_checkpoint()
    finally:
        state["bar"].close()
        state["profiler"].close()
        trainer.dashboard_logger.finish()
    end_step = trainer.total_steps_done
    ckpt = Path(trainer.output_path) / f"checkpoint_{end_step}.pth"
    losses = {k.removeprefix("avg_"): float(v) for k, v in (trainer.keep_avg_train.avg_values.items()
              if trainer.keep_avg_train else []) if "loss" in k}
    return Fit(state["reason"], Path(trainer.output_path), start_step, end_step, time.time() - t0,
               ckpt if ckpt.is_file() else None, losses, state["profiler"].summary)
