"""Settings the Parler tests share (a module of its own: `conftest` names collide across test folders)."""

from __future__ import annotations

from pathlib import Path

OVERRIDES = {"max_steps": 12, "freeze_text_encoder": False, "eval_every": 6, "save_every": 100,
             "sample_max_seconds": 0.3, "warmup_steps": 2}


def cli_args(workspace: Path, dataset: Path, run: str, **extra) -> list[str]:
    """Arguments of `python -m nbhelpers.parler train` for the shared test settings."""
    args = ["train", "--profile", "smoke", "--workspace", str(workspace), "--dataset", str(dataset), "--run", run]
    for key, value in {**OVERRIDES, **extra}.items():
        args += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return args
