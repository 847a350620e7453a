"""Checks run before any training step, each failure a readable message naming the path and the fix: a Kaggle
kernel should fail in its first minute, not after hours or silently (coqui drops unknown characters)."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..env import gpu_info
from .config import SAMPLE_RATE, Row, split_rows

# What bn_phonemizer turns into words (digits, times, currency) or handles itself before the model sees it.
BN_NORMALISED = set("0123456789%৳/:.-\u2018\u2019") | {" ", "\t"}
MAX_EXAMPLES = 5
# Punctuation that only marks a pause or a quote: losing it costs no words ('&', '@', '#' do carry words).
PAUSE_PO = set(".,;:!?\u2026'\"\u00a1\u00bf\u00b7\u0964\u0965")


def is_pause(c: str) -> bool:
    """Brackets, quotes, dashes and sentence punctuation: dropping them loses no words."""
    return unicodedata.category(c) in ("Ps", "Pe", "Pi", "Pf", "Pd") or c in PAUSE_PO


@dataclass
class Check:
    """One pre-flight check: name, passed or not, and the message (the fix when it failed)."""

    name: str
    ok: bool
    message: str


@dataclass
class PreflightReport:
    """All checks of one run; ``raise_if_failed`` stops before training with every problem listed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def __str__(self) -> str:
        return "\n".join(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.message}" for c in self.checks)

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise PreflightError(self)


class PreflightError(RuntimeError):
    """Raised with the failed checks; its message lists each one with its fix."""

    def __init__(self, report: PreflightReport):
        self.report = report
        failed = [c for c in report.checks if not c.ok]
        super().__init__("pre-flight failed:\n" + "\n".join(f"- {c.name}: {c.message}" for c in failed))


def check_environment(params: dict[str, Any], gpus: list | None = None) -> Check:
    """A GPU where the profile requires one (``require_gpu``: the T4 profiles), and mixed precision only where it
    can work (CUDA; fp16 on a T4)."""
    gpus = gpu_info() if gpus is None else gpus
    where = ", ".join(f"{g.name} ({g.memory_gib} GiB)" for g in gpus) or "CPU only"
    if params.get("require_gpu", params["profile"] != "smoke") and not gpus:
        return Check("environment", False, f"profile {params['profile']} needs a CUDA GPU but none is visible. Fix: "
                     "Kaggle: Settings > Accelerator > GPU T4 x2; Colab: Runtime > Change runtime type > T4 GPU; "
                     "or run with profile='smoke'.")
    if params["mixed_precision"]:
        if not gpus:
            return Check("environment", False, "mixed_precision=true on CPU means bf16 autocast, 30-50x slower. "
                         "Fix: set mixed_precision=false (the default).")
        if params["precision"] == "bf16" and gpus[0].capability < (8, 0):
            return Check("environment", False, f"{gpus[0].name} has no bf16. Fix: precision='fp16' or "
                         "mixed_precision=false.")
        return Check("environment", True, f"{where}; mixed precision {params['precision']} opted in: VITS has a "
                     "history of NaN losses under fp16 (coqui-ai/TTS #1371, #755) - watch the loss curves")
    return Check("environment", True, f"{where}; fp32 training")


def check_espeak(needed_by: str = "start 'en-vits'", purpose: str = "phonemes for the en-vits start",
                 instead: str = "pick start='bn-male'/'bn-female'") -> Check:
    """espeak-ng (or espeak) is installed: ``needed_by`` (the en-vits start, stage 08's English front end)
    phonemizes with it."""
    import shutil

    found = shutil.which("espeak-ng") or shutil.which("espeak")
    if found:
        return Check("espeak", True, f"{found} found ({purpose})")
    return Check("espeak", False, f"{needed_by} needs espeak-ng, which is not installed. Fix: "
                 f"`apt-get install -y espeak-ng` (Kaggle: Internet on), or {instead}.")


def check_dataset(ljspeech_dir: str | Path | None) -> tuple[Check, list[Row], list[Row]]:
    """The LJSpeech export exists, its metadata parses, and every wav is readable mono 22.05 kHz audio."""
    import soundfile as sf

    if ljspeech_dir is None or not Path(ljspeech_dir).is_dir():
        return Check("dataset", False, f"dataset folder {ljspeech_dir} not found. Fix: run notebook 01_data_prep "
                     "(or `python -m nbhelpers.data prepare`), attach its output as a Kaggle input, or pass "
                     "dataset_dir=<folder with metadata.csv and wavs/>."), [], []
    root = Path(ljspeech_dir)
    if not (root / "metadata.csv").is_file() and not (root / "metadata_train.csv").is_file():
        return Check("dataset", False, f"{root / 'metadata.csv'} is missing. Fix: re-run data prep (01); the "
                     "export is incomplete."), [], []
    try:
        train, val = split_rows(root)
    except (ValueError, UnicodeDecodeError, OSError) as e:
        return Check("dataset", False, f"{e}" + ("" if "Fix" in str(e) else
                     f" Fix: the metadata in {root} must be UTF-8 'id|text|text' lines; re-run data prep.")), [], []
    if not train:
        return Check("dataset", False, f"{root}: no training rows. Fix: re-run data prep with more data."), [], []
    problems = []
    for row in train + val:
        if not row.wav.is_file():
            problems.append(f"{row.file.name}:{row.line} ({row.id}): {row.wav} missing")
            continue
        try:
            info = sf.info(str(row.wav))
        except RuntimeError as e:
            problems.append(f"{row.file.name}:{row.line} ({row.id}): {row.wav} unreadable ({e})")
            continue
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            problems.append(f"{row.file.name}:{row.line} ({row.id}): {row.wav} is {info.samplerate} Hz, "
                            f"{info.channels} channel(s)")
    if problems:
        shown = "; ".join(problems[:MAX_EXAMPLES]) + (f"; ... {len(problems) - MAX_EXAMPLES} more" if len(problems) > MAX_EXAMPLES else "")
        return Check("dataset", False, f"{len(problems)} of {len(train) + len(val)} rows have bad audio: {shown}. "
                     f"Fix: re-run data prep (it writes mono {SAMPLE_RATE} Hz wavs) or drop these rows."), train, val
    return Check("dataset", True, f"{root}: {len(train)} train + {len(val)} validation rows, all wavs mono "
                 f"{SAMPLE_RATE} Hz"), train, val


def check_inputs(params: dict[str, Any], workspace: Any, dataset_dir: str | Path | None = None
                 ) -> tuple[PreflightReport, Path | None, list[Row], list[Row]]:
    """The first checks of every coqui trainer (stages 04 and 08): the environment, then the LJSpeech export
    (``dataset_dir``, or the profile's ``dataset`` found in the workspace or its inputs). Returns the report so far,
    the dataset folder (None when not found) and its train/validation rows (empty when a check failed)."""
    from ..data.layout import DatasetPaths

    report = PreflightReport()
    report.add(check_environment(params))
    if dataset_dir is None:
        try:
            dataset_dir = DatasetPaths.find(params["dataset"], workspace).ljspeech
        except FileNotFoundError as e:
            report.add(Check("dataset", False, str(e)))
            return report, None, [], []
    ds_check, train_rows, val_rows = check_dataset(dataset_dir)
    report.add(ds_check)
    return report, Path(dataset_dir), train_rows, val_rows


def processed_text(tokenizer: Any, text: str) -> str:
    """The text as the model's tokenizer sees it before encoding: cleaner, then phonemizer (coqui's order)."""
    if tokenizer.text_cleaner is not None:
        text = tokenizer.text_cleaner(text)
    if tokenizer.phonemizer is not None:
        text = tokenizer.phonemizer.phonemize(text, separator="")
    return text


def uncovered_characters(rows: list[Row], tokenizer: Any) -> dict[str, list[Row]]:
    """Characters coqui would drop, with the rows containing them: characters of the processed text missing
    from the vocabulary, and (bn_phonemizer) raw characters it silently deletes (Latin, emoji...)."""
    from tqdm.auto import tqdm

    vocab = set(tokenizer.characters.vocab)
    bangla_text = tokenizer.phonemizer is not None and tokenizer.phonemizer.name() == "bn_phonemizer"
    found: dict[str, list[Row]] = defaultdict(list)
    for row in tqdm(rows, desc="character coverage", unit="row", mininterval=2, disable=len(rows) < 200):
        bad = {c for c in processed_text(tokenizer, row.text) if c not in vocab}
        if bangla_text:  # pause punctuation carries no words: bn_phonemizer dropping it loses nothing
            bad |= {c for c in row.text if c not in vocab and c not in BN_NORMALISED and not is_pause(c)}
        for c in bad:
            found[c].append(row)
    return dict(found)


def describe_char(c: str) -> str:
    return f"U+{ord(c):04X} {c!r} {unicodedata.name(c, 'unnamed')}"


def _examples(found: dict[str, list[Row]]) -> str:
    lines = []
    for c, where in sorted(found.items(), key=lambda kv: -len(kv[1])):
        eg = ", ".join(f"{r.file.name}:{r.line} ({r.id})" for r in where[:MAX_EXAMPLES])
        lines.append(f"{describe_char(c)} in {len(where)} row(s), e.g. {eg}")
    return "; ".join(lines)


def check_characters(rows: list[Row], tokenizer: Any) -> Check:
    """Every transcript character is covered by the config's character set (else list them with rows).
    Uncovered punctuation only costs a pause, so it is reported without failing the check."""
    found = uncovered_characters(rows, tokenizer)
    punct = {c: r for c, r in found.items() if is_pause(c)}
    words = {c: r for c, r in found.items() if c not in punct}
    note = f" Punctuation outside the set is dropped (harmless): {_examples(punct)}." if punct else ""
    if not words:
        return Check("characters", True, f"all letters and symbols of {len(rows)} transcripts are covered "
                     f"({len(tokenizer.characters.vocab)} symbols).{note}")
    return Check("characters", False, f"{len(words)} character(s) not covered and would be dropped: "
                 + _examples(words) + ". Fix: transliterate or remove them in data prep (01), or add them to the "
                 "character set (a new vocabulary resets the text embedding on restore)." + note)


def check_restore(checkpoint: str | Path, model: Any, min_fraction: float = 0.5) -> Check:
    """The restore checkpoint exists, loads, and fits this architecture (most tensors restorable)."""
    from .restore import load_state, plan_restore

    path = Path(checkpoint)
    if not path.is_file():
        return Check("restore", False, f"restore checkpoint {path} not found. Fix: check restore_path, or attach "
                     "the model as a Kaggle input, or use start='tiny' for a smoke run.")
    try:
        state = load_state(path)
    except Exception as e:  # torch raises several types for truncated or foreign files
        return Check("restore", False, f"{path} cannot be loaded ({type(e).__name__}: {str(e)[:200]}). Fix: the file "
                     "is corrupt or not a VITS checkpoint; download it again.")
    _, report = plan_restore(model, state, str(path))
    if report.restored < min_fraction * report.total:
        return Check("restore", False, f"{path} does not match this architecture: only {report.restored} of "
                     f"{report.total} tensors fit. Fix: build the config from the checkpoint's own config.json "
                     "(pass restore_path with config.json beside it) or pick the matching start.")
    return Check("restore", True, report.summary().replace("\n", "; "))
