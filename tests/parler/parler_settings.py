"""Settings the Parler tests share (a module of its own: `conftest` names collide across test folders)."""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "ನಮಸ್ಕಾರ", "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ", "ಇಂದು ಮಳೆ ಬಂತು", "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ", "ಅವನು ಪುಸ್ತಕ ಓದುತ್ತಾನೆ",
    "ಬೆಂಗಳೂರು ದೊಡ್ಡ ನಗರ", "ಹಕ್ಕಿ ಹಾರುತ್ತದೆ", "ನೀರು ಕುಡಿಯಿರಿ", "ಅಮ್ಮ ಊಟ ಮಾಡಿದರು", "ಮಕ್ಕಳು ಆಟ ಆಡುತ್ತಾರೆ",
    "ಹೂವು ಅರಳಿದೆ", "ಸೂರ್ಯ ಉದಯಿಸಿದ", "ರೈಲು ಬಂತು", "ಚಹಾ ಬಿಸಿಯಾಗಿದೆ", "ದಾರಿ ಉದ್ದವಾಗಿದೆ", "ಮರ ಎತ್ತರವಾಗಿದೆ",
]
OVERRIDES = {"max_steps": 12, "freeze_text_encoder": False, "eval_every": 6, "save_every": 100,
             "sample_max_seconds": 0.3, "warmup_steps": 2}


def cli_args(workspace: Path, dataset: Path, run: str, **extra) -> list[str]:
    """Arguments of `python -m nbhelpers.parler train` for the shared test settings."""
    args = ["train", "--profile", "smoke", "--workspace", str(workspace), "--dataset", str(dataset), "--run", run]
    for key, value in {**OVERRIDES, **extra}.items():
        args += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return args


def run_record(workspace: Path, run_dir: Path) -> dict:
    """The newest stage-02 record of the run in ``run_dir`` (tests share one workspace, so the newest record overall
    may belong to another test's run)."""
    from nbhelpers.paths import Workspace
    from nbhelpers.records import read_records

    mine = [r for r in read_records(Workspace(workspace), "02_parler_finetune")
            if r.get("outputs", {}).get("run_dir") == str(run_dir)]
    assert mine, f"no stage-02 record for {run_dir}"
    return mine[-1]
