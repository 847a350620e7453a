"""Deterministic, hash-based train/validation/test assignment: an item's split depends only on its id (or
its speaker, for speaker-disjoint splits) and a salt, so adding data never moves existing items."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .layout import SPLITS


def unit_hash(key: str, salt: str = "") -> float:
    """A stable number in [0, 1) for ``key``."""
    return int(hashlib.sha1(f"{salt}\x1f{key}".encode()).hexdigest()[:15], 16) / 16**15


def assign_splits(ids: Sequence[str], speakers: Sequence[str] | None = None, *,
                  fractions: Sequence[float] = (0.8, 0.1, 0.1), speaker_disjoint: bool = False,
                  salt: str = "tts-suite", ensure_nonempty: bool = True) -> dict[str, str]:
    """Map each id to train/validation/test by hashing it (or its speaker when ``speaker_disjoint``).

    With ``ensure_nonempty`` and at least three units, an empty split takes the unit whose hash lies nearest
    its range, so tiny datasets still get a validation and a test item (still deterministic).
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    if speaker_disjoint and speakers is None:
        raise ValueError("speaker_disjoint splits need the speakers")
    keys = list(speakers) if speaker_disjoint else list(ids)
    units = sorted(set(keys))
    h = {u: unit_hash(u, salt) for u in units}
    bounds = (fractions[0], fractions[0] + fractions[1])
    split_of = {u: SPLITS[0] if h[u] < bounds[0] else SPLITS[1] if h[u] < bounds[1] else SPLITS[2] for u in units}
    if ensure_nonempty and len(units) >= 3:
        centres = {SPLITS[0]: bounds[0] / 2, SPLITS[1]: (bounds[0] + bounds[1]) / 2, SPLITS[2]: (bounds[1] + 1) / 2}
        for split in SPLITS:
            if fractions[SPLITS.index(split)] > 0 and split not in split_of.values():
                counts = {s: list(split_of.values()).count(s) for s in SPLITS}
                donors = [u for u in units if counts[split_of[u]] > 1]
                if donors:
                    pick = min(donors, key=lambda u: abs(h[u] - centres[split]))
                    split_of[pick] = split
    return {i: split_of[k] for i, k in zip(ids, keys, strict=True)}
