"""Audio codes encoded by several processes (one per GPU on CUDA, ``encode_workers`` on CPU) are the codes one
process encodes, row for row, and land in the same cache; a bad row in a worker's shard is named in the error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch

from nbhelpers.paths import PROJECT_ROOT

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def test_two_processes_encode_the_same_codes_as_one(kn_dataset_dir):
    from nbhelpers.parler.codes import encode_split
    from nbhelpers.parler.model import build_tiny

    bundle = build_tiny(0)  # random weights: the codes only have to be the same, not meaningful
    split = datasets.load_from_disk(str(kn_dataset_dir))["train"]
    one = encode_split(bundle, split, batch_size=3, workers=1)
    two = encode_split(bundle, split, batch_size=3, workers=2)
    assert len(one) == len(two) == len(split)
    assert all(a.dtype == torch.int16 and torch.equal(a, b) for a, b in zip(one, two, strict=True))
    assert len({tuple(a.shape) for a in one}) > 1  # rows of several lengths: the merge order is really tested


def test_encode_command_with_two_workers_writes_the_same_cache_as_one(kn_dataset_dir, tmp_path):
    caches = {}
    for workers in (1, 2):
        ws = tmp_path / f"w{workers}"
        done = subprocess.run([sys.executable, "-m", "nbhelpers.parler", "encode", "--profile", "smoke",
                               "--workspace", str(ws), "--dataset", str(kn_dataset_dir),
                               "--set", f"encode_workers={workers}"], env=ENV, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        info = json.loads((ws / "parler" / "codes" / "encoded.json").read_text())
        assert info["encode_workers"] == workers
        folder = info["datasets"][str(kn_dataset_dir)]["folder"]
        caches[workers] = {split: torch.load(f"{folder}/{split}.pt", weights_only=True)["codes"]
                           for split in ("train", "validation", "test")}
    for split, rows in caches[1].items():
        assert all(torch.equal(a, b) for a, b in zip(rows, caches[2][split], strict=True)), split


def test_a_bad_row_in_a_workers_shard_is_named(kn_dataset_dir):
    from nbhelpers.parler.codes import encode_split
    from nbhelpers.parler.model import build_tiny

    split = datasets.load_from_disk(str(kn_dataset_dir))["train"].select(range(4))
    rows = split.to_list()
    rows[3]["audio"] = {"array": np.zeros((0,), dtype=np.float32), "sampling_rate": 44100}
    bad = datasets.Dataset.from_list(rows, features=split.features)
    with pytest.raises(ValueError, match=r"row 3 \(kn_003\).*non-empty mono"):
        encode_split(build_tiny(0), bad, batch_size=1, workers=2)
