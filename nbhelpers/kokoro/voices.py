"""Voice specifications: one voice name, or a weighted blend such as ``"jf_alpha:0.7,jf_nezumi:0.3"``.

A Kokoro voice is a pack of style vectors ([510, 1, 256], one per input length); a blend is the weighted mean
of packs. Weights are validated (finite, positive, no duplicates, known voices) and normalised to sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

SPEED_RANGE = (0.5, 2.0)


def parse_voice_spec(spec: str | Mapping[str, float]) -> dict[str, float]:
    """Turn ``"a:0.7,b:0.3"``, ``"a"`` or ``{"a": 0.7, "b": 0.3}`` into {name: weight}, rejecting malformed input."""
    if isinstance(spec, Mapping):
        items = [(str(k).strip(), v) for k, v in spec.items()]
    else:
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("voice must be a name such as 'jf_alpha' or a blend such as 'jf_alpha:0.7,jf_nezumi:0.3'")
        items = []
        for part in spec.split(","):
            name, sep, weight = part.partition(":")
            if not name.strip():
                raise ValueError(f"voice spec {spec!r}: empty voice name in {part!r}")
            if sep and not weight.strip():
                raise ValueError(f"voice spec {spec!r}: missing weight after {name.strip()!r}:")
            items.append((name.strip(), weight.strip() if sep else 1.0))
    weights: dict[str, float] = {}
    for name, raw in items:
        if name in weights:
            raise ValueError(f"voice {name!r} appears twice in the blend; give it once with the summed weight")
        try:
            w = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"weight of voice {name!r} must be a number, got {raw!r}") from None
        if not math.isfinite(w) or w <= 0:
            raise ValueError(f"weight of voice {name!r} must be a finite number > 0, got {raw!r}")
        weights[name] = w
    if not weights:
        raise ValueError("voice blend is empty")
    return weights


def validate_blend(spec: str | Mapping[str, float], available: Iterable[str]) -> dict[str, float]:
    """Parse a voice spec, check every name is available, and normalise the weights to sum to 1."""
    weights = parse_voice_spec(spec)
    known = set(available)
    unknown = [n for n in weights if n not in known]
    if unknown:
        raise ValueError(f"unknown voice(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def blend_packs(weights: Mapping[str, float], load: Callable[[str], np.ndarray]) -> np.ndarray:
    """Weighted sum of voice packs (weights already normalised); all packs must have the same shape."""
    packs = {name: np.asarray(load(name), dtype=np.float32) for name in weights}
    shapes = {p.shape for p in packs.values()}
    if len(shapes) != 1:
        raise ValueError(f"voice packs differ in shape: { {n: p.shape for n, p in packs.items()} }")
    return sum(w * packs[name] for name, w in weights.items()).astype(np.float32)


def describe_blend(weights: Mapping[str, float]) -> str:
    """Readable form of a normalised blend: 'jf_alpha' or 'jf_alpha 70% + jf_nezumi 30%'."""
    if len(weights) == 1:
        return next(iter(weights))
    return " + ".join(f"{n} {w:.0%}" for n, w in weights.items())


def check_speed(speed: float) -> float:
    """Reject speeds outside 0.5-2.0 (Kokoro's duration predictor degrades beyond that)."""
    s = float(speed)
    if not (SPEED_RANGE[0] <= s <= SPEED_RANGE[1]):
        raise ValueError(f"speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}, got {speed}")
    return s
