"""Validation reasons, the suggested fix for each, and the one readable error that strict mode raises."""

from __future__ import annotations

from collections import Counter
from typing import Any

FIXES = {
    "missing_audio": "Put the audio file where the transcript row points (or remove the row).",
    "malformed_row": "Fix the line so it has an id and a transcript in the reader's column layout.",
    "unreadable_audio": "Re-export the file as WAV/FLAC (e.g. `ffmpeg -i in out.wav`); it may be truncated or not audio.",
    "empty_audio": "The file has no samples: re-record or re-export it.",
    "empty_text": "Add the transcript (it is empty after normalisation).",
    "silent": "The clip has no speech above the silence threshold: check the recording level or remove it.",
    "clipped": "Too many samples hit full scale: re-record at a lower gain (clipping cannot be undone).",
    "too_short": "Shorter than min_duration after trimming: merge it with a neighbour or drop it.",
    "too_long": "Longer than max_duration: split it at pauses into shorter clips with matching transcripts.",
    "wrong_script": "Most letters are not in the language's script: check the language setting or transliterate.",
    "duplicate_id": "Two rows share this id: rename one (only the first occurrence is kept).",
    "text_audio_mismatch": "Speaking rate is implausible for the transcript length: the audio and text probably "
                           "belong to different rows.",
    "duration_mismatch": "The declared duration differs from the audio: the manifest points at the wrong file.",
    "bad_encoding": "The line is not valid UTF-8 text: save the file as UTF-8 (e.g. `iconv -f <its encoding> -t "
                    "utf-8 in.tsv > out.tsv`) or retype the damaged line.",
    "invalid_samples": "The audio holds NaN or infinite sample values (a broken float export): re-export it from "
                       "the original recording, e.g. as 16-bit PCM WAV.",
    "processing_error": "Cleaning this item failed unexpectedly: the detail names the error; re-export the audio, "
                        "and report it as a bug (with the file) if it persists.",
}
REASONS = tuple(FIXES)


class DataValidationError(ValueError):
    """Strict mode, or nothing usable in a source: one error listing every rejected item by reason."""


class SourceError(ValueError):
    """A source file that is unusable as a whole (not text, not JSON, no header): one error naming the file."""


def rejection(item_id: str, source: str, reason: str, detail: str = "") -> dict[str, Any]:
    """A quarantine record: id, source file/row, reason, detail and the suggested fix."""
    if reason not in FIXES:
        raise ValueError(f"unknown rejection reason {reason!r}; known: {', '.join(REASONS)}")
    return {"id": item_id, "source": source, "reason": reason, "detail": detail, "fix": FIXES[reason]}


def summary(rejected: list[dict[str, Any]], *, read: int, kept: int, examples: int = 3) -> str:
    """A readable multi-line summary of what was rejected and why."""
    counts = Counter(r["reason"] for r in rejected)
    lines = [f"{len(rejected)} of {read} items rejected ({kept} kept):"]
    for reason, count in counts.most_common():
        lines.append(f"  {reason} x{count}: {FIXES[reason]}")
        for r in [r for r in rejected if r["reason"] == reason][:examples]:
            lines.append(f"    - {r['id']} ({r['source']}) {r['detail']}")
    return "\n".join(lines)
