"""Parameter sets per stage and profile, kept in one place: ``nbhelpers/profiles/<stage>.toml``.

Each file has one table per profile (``[smoke]``, ``[kaggle-t4]``, ``[colab-t4]``); a table may say
``inherit = "<other profile>"`` to start from another and change a few values. ``profile="auto"`` picks
by environment: Kaggle -> kaggle-t4, Colab -> colab-t4, a local GPU -> kaggle-t4, otherwise smoke.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..env import detect_platform, gpu_info
from .limits import SettingsError, check_settings, describe, typed
from .t4 import check_t4

PROFILE_DIR = Path(__file__).parent
PROFILES = ("smoke", "kaggle-t4", "colab-t4")
LIMITS = "limits"  # the table of allowed values in each profile file (not a profile; nbhelpers/profiles/limits.py)
__all__ = ["LIMITS", "PROFILE_DIR", "PROFILES", "Settings", "SettingsError", "load_profile", "resolve_profile",
           "settings_class", "settings_help", "size_overrides", "stages"]


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


class Settings(Mapping[str, Any]):
    """One stage's checked settings under one profile: an instance of that stage's frozen dataclass
    (:func:`settings_class`), read as ``cfg.max_steps`` or ``cfg["max_steps"]``. Frozen, so no stage changes a
    setting mid-run; a run that needs other values loads the profile again with overrides (checked again)."""

    stage: ClassVar[str]

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def __reduce__(self) -> tuple[Any, ...]:  # the class is built at run time: pickle by stage name and values
        return _settings, (self.stage, dict(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.items())})"


@functools.cache
def settings_class(stage: str) -> type[Settings]:
    """The frozen dataclass of ``stage``'s settings: one field per setting of ``profiles/<stage>.toml`` (every
    profile has the same keys, each with a ``[limits]`` entry), typed as the file's ``[smoke]`` value, plus
    ``profile``."""
    with (PROFILE_DIR / f"{stage}.toml").open("rb") as f:
        tables = tomllib.load(f)
    smoke = _table(stage, "smoke", tables)
    fields = [(key, type(value)) for key, value in smoke.items()] + [("profile", str)]
    name = "".join(part.title() for part in stage.split("_")) + "Settings"
    return dataclasses.make_dataclass(name, fields, bases=(Settings,), frozen=True, eq=False,
                                      namespace={"stage": stage, "__module__": __name__})


def _settings(stage: str, values: dict[str, Any]) -> Settings:
    return settings_class(stage)(**values)


def _comments(text: str) -> dict[str, str]:
    """``key -> comment`` from a profile TOML: the comment beside a key's first assignment plus the comment-only
    lines indented under it (the meaning of a setting is written once, where it is first set)."""
    out: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if line[:1].isspace() and line.strip().startswith("#") and last is not None:
            out[last] = f"{out[last]} {line.strip().lstrip('#').strip()}".strip()
            continue
        last = None
        match = re.match(r"^([A-Za-z_][\w-]*)\s*=\s*(.*)$", line)
        if not match or match.group(1) in out:
            continue
        key, rest = match.groups()
        quoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', rest)  # a '#' inside a string is not a comment
        out[key] = quoted.split("#", 1)[1].strip() if "#" in quoted else ""
        last = key
    return out


def settings_help(stage: str) -> str:
    """Every setting of ``stage``: allowed values (its ``[limits]`` entry), meaning (the comment in the TOML) and
    the value in each profile; the ``--help`` of every stage command ends with it."""
    path = PROFILE_DIR / f"{stage}.toml"
    text = path.read_text(encoding="utf-8")
    tables = tomllib.loads(text)
    limits = tables.get("limits", {})
    profiles = [name for name in tables if name != "limits"]
    resolved = {name: _table(stage, name, tables) for name in profiles}
    comments = _comments(text)

    def short(value: Any) -> str:
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= 40 else shown[:37] + "..."

    lines = [f"settings (--set KEY=VALUE; values per profile from nbhelpers/profiles/{stage}.toml):"]
    for key in dict.fromkeys(k for name in profiles for k in resolved[name]):
        first = next(resolved[name][key] for name in profiles if key in resolved[name])
        integer = isinstance(first, int) and not isinstance(first, bool)
        allowed = describe(limits[key], integer) if key in limits else "not limited"
        meaning = comments.get(key, "")
        lines.append(f"  {key}: {allowed}" + (f". {meaning}" if meaning else ""))
        lines.append("      " + "; ".join(f"{name} = {short(resolved[name][key])}" for name in profiles
                                          if key in resolved[name]))
    return "\n".join(lines)


def _defined_in(stage: str, profile: str, tables: dict[str, Any], key: str) -> str:
    """The profile table that sets ``key`` for ``profile`` (itself or the one it inherits from), for messages."""
    while key not in tables[profile] and "inherit" in tables[profile]:
        profile = tables[profile]["inherit"]
    return f"profiles/{stage}.toml [{profile}]"


def size_overrides(stage: str | None = None) -> dict[str, Any]:
    """The size-override table named by $TTS_SIZE_OVERRIDES (the dress rehearsal's ``rehearsal.toml``): per stage,
    values applied on top of whatever profile is loaded, so a real profile runs small. Empty when unset."""
    path = os.environ.get("TTS_SIZE_OVERRIDES")
    if not path:
        return {}
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return table.get(stage, {}) if stage else table


def load_profile(stage: str, profile: str = "auto", overrides: Mapping[str, Any] | None = None) -> Settings:
    """The parameters of one stage under one profile, then the size-override table (when set, see
    :func:`size_overrides`), then ``overrides``.

    An override whose key the profile does not define is an error (a typo would otherwise be ignored).
    The result always carries ``profile`` with the resolved name. Every value is then checked against the file's
    ``[limits]`` (:mod:`.limits`): a value out of range raises :class:`SettingsError` naming its source. Values
    come back in the profile file's types (whole numbers stay ``int``, a float setting is always ``float``, lists
    element by element), so stages read them without casts, as the stage's frozen :class:`Settings` dataclass.
    """
    path = PROFILE_DIR / f"{stage}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no profile file for stage {stage!r} ({path}); known stages: {', '.join(stages())}")
    name = resolve_profile(profile)
    with path.open("rb") as f:
        tables = tomllib.load(f)
    params = _table(stage, name, tables)
    defaults = dict(params)
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

    def origin(key: str) -> str:
        if key in (overrides or {}):
            value = overrides[key]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            return f"--set {key}={text}"
        if key in sized:
            return f"{os.environ['TTS_SIZE_OVERRIDES']} [{stage}]"
        return _defined_in(stage, name, tables, key)

    check_settings(stage, name, params, defaults, tables.get(LIMITS, {}), origin)
    limits = tables.get(LIMITS, {})
    settings = _settings(stage, {**{key: typed(value, limits[key], defaults[key]) for key, value in params.items()},
                                 "profile": name})
    check_t4(stage, settings)
    return settings
