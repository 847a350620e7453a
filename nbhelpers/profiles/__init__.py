"""Parameter sets per stage and profile, kept in one place: ``nbhelpers/profiles/<stage>.toml``.

Each file has one table per profile (``[smoke]``, ``[kaggle-t4]``, ``[colab-t4]``); a table may say
``inherit = "<other profile>"`` to start from another and change a few values. ``profile="auto"`` picks
by environment: Kaggle -> kaggle-t4, Colab -> colab-t4, a local GPU -> kaggle-t4, otherwise smoke.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ..env import detect_platform, gpu_info
from .t4 import check_t4

PROFILE_DIR = Path(__file__).parent
PROFILES = ("smoke", "kaggle-t4", "colab-t4")


def resolve_profile(profile: str = "auto", *, platform: str | None = None, has_gpu: bool | None = None) -> str:
    """Turn 'auto' (or $TTS_PROFILE) into a concrete profile name; reject unknown names."""
    if profile == "auto":
        profile = os.environ.get("TTS_PROFILE", "auto")
    if profile == "auto":
        platform = platform or detect_platform()
        if platform.startswith("kaggle"):
            return "kaggle-t4"
        if platform == "colab":
            return "colab-t4"
        has_gpu = bool(gpu_info()) if has_gpu is None else has_gpu
        return "kaggle-t4" if has_gpu else "smoke"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)} or 'auto'")
    return profile


def stages() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _table(stage: str, profile: str, tables: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if profile in seen:
        raise ValueError(f"profiles/{stage}.toml: inherit loop {' -> '.join(seen + (profile,))}")
    if profile not in tables:
        raise KeyError(f"profiles/{stage}.toml has no [{profile}] table")
    table = dict(tables[profile])
    parent = table.pop("inherit", None)
    if parent is None:
        return table
    return {**_table(stage, parent, tables, seen + (profile,)), **table}


def size_overrides(stage: str | None = None) -> dict[str, Any]:
    """The size-override table named by $TTS_SIZE_OVERRIDES (the dress rehearsal's ``rehearsal.toml``): per stage,
    values applied on top of whatever profile is loaded, so a real profile runs small. Empty when unset."""
    path = os.environ.get("TTS_SIZE_OVERRIDES")
    if not path:
        return {}
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return table.get(stage, {}) if stage else table


def load_profile(stage: str, profile: str = "auto", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters of one stage under one profile, then the size-override table (when set, see
    :func:`size_overrides`), then ``overrides``.

    An override whose key the profile does not define is an error (a typo would otherwise be ignored).
    The result always carries ``profile`` with the resolved name.
    """
    path = PROFILE_DIR / f"{stage}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no profile file for stage {stage!r} ({path}); known stages: {', '.join(stages())}")
    name = resolve_profile(profile)
    with path.open("rb") as f:
        tables = tomllib.load(f)
    params = _table(stage, name, tables)
    sized = size_overrides(stage)
    unknown = set(sized) - set(params)
    if unknown:
        raise KeyError(f"{os.environ['TTS_SIZE_OVERRIDES']}: [{stage}] sets {', '.join(sorted(unknown))}, which "
                       f"profiles/{stage}.toml does not define")
    params.update(sized)
    for key, value in (overrides or {}).items():
        if key not in params:
            raise KeyError(f"{key!r} is not a parameter of stage {stage!r}; known: {', '.join(sorted(params))}")
        params[key] = value
    params["profile"] = name
    check_t4(stage, params)
    return params
