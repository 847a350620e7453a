"""Where data prep writes a prepared dataset inside the workspace: the contract every trainer reads.

    <workspace>/data/<name>/
        manifest.jsonl          kept utterances, one JSON object a line (id, audio_path, text, raw_text,
                                speaker, language, duration, split, annotations..., text_description);
                                audio_path is relative to this folder (the 44.1 kHz WAV under audio/44100/),
                                files = {"parler"|"ljspeech"|"pocket": relative path at that target rate}
        quarantine.jsonl        rejected items: id, source file/row, reason, suggested fix
        stats.json              hours, utterances, speakers, rejected counts by reason, split sizes
        parler/                 datasets.DatasetDict (train/validation/test) saved with save_to_disk, 44.1 kHz
        ljspeech/               metadata.csv (+ metadata_train.csv, metadata_val.csv) and wavs/, 22.05 kHz
        pocket/                 train.json, validation.json, test.json manifests and wavs/, 24 kHz
                                (audio_path in these JSON files is relative to pocket/)
        audio/44100/            the cleaned 16-bit master WAVs the manifest points at
        duration_histogram.png  the stats plot
        PREPARED.json           written last: the dataset is complete (absent means partial)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import Workspace, find_artifact

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DatasetPaths:
    root: Path

    @classmethod
    def in_workspace(cls, name: str, workspace: Workspace | None = None) -> DatasetPaths:
        """The folder data prep writes ``name`` to (created on demand by the writer)."""
        return cls((workspace or Workspace()).root / "data" / name)

    @classmethod
    def find(cls, name: str, workspace: Workspace | None = None) -> DatasetPaths:
        """A *complete* prepared dataset ``name``, in the workspace or under /kaggle/input."""
        marker = find_artifact(f"data/{name}/PREPARED.json", workspace, required=True,
                               hint="Run notebook 01_data_prep (or `python -m nbhelpers.data prepare`) first.")
        return cls(marker.parent)

    manifest = property(lambda self: self.root / "manifest.jsonl")
    quarantine = property(lambda self: self.root / "quarantine.jsonl")
    stats = property(lambda self: self.root / "stats.json")
    parler_hf = property(lambda self: self.root / "parler")
    ljspeech = property(lambda self: self.root / "ljspeech")
    pocket = property(lambda self: self.root / "pocket")
    complete_marker = property(lambda self: self.root / "PREPARED.json")

    def pocket_manifest(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.pocket / f"{split}.json"

    @property
    def is_complete(self) -> bool:
        return self.complete_marker.is_file()

    def read_manifest(self, split: str | None = None) -> list[dict[str, Any]]:
        """The kept utterances (optionally of one split) with ``audio_path`` made absolute."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        rows = []
        for line in self.manifest.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if split is None or row["split"] == split:
                row["audio_path"] = str(self.root / row["audio_path"])
                rows.append(row)
        return rows
