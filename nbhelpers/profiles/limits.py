"""What every setting may be: the ``[limits]`` table of each ``profiles/<stage>.toml``, checked when a profile is
loaded (before anything is downloaded or trained), so a nonsense value stops the stage with one message naming
where it came from, the allowed values and the fix.

One entry per setting, in the same file as the values:

* ``key = [min, max]``: a number in the closed range; ``inf`` / ``-inf`` leave an end unbounded. A third element
  opens an end: ``"open-min"`` (min excluded), ``"open-max"`` (max excluded) or ``"open"`` (both). A setting whose
  profile value is a whole number must stay one (``max_steps = 2.5`` is refused); floats accept whole numbers.
* ``key = ["a", "b", ...]``: one of these strings.
* ``key = "bool"``: true or false; ``key = "text"``: any string (names, paths, sentences); ``key = "table"``: a
  free-form table that its stage checks itself (data prep's ``sources``).

A list or table value (layer lists, codebook weights, sample sentences, per-language names) is checked element by
element against its entry, and must stay a list / a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

KINDS = ("bool", "text", "table")
OPEN_ENDS = {"open-min": (True, False), "open-max": (False, True), "open": (True, True)}


class SettingsError(ValueError):
    """A setting outside its declared limits, or a setting with no declared limit."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_range(limit: Any) -> bool:
    return (isinstance(limit, list) and len(limit) in (2, 3) and all(_is_number(x) for x in limit[:2])
            and (len(limit) == 2 or limit[2] in OPEN_ENDS))


def check_limit_entry(key: str, limit: Any) -> None:
    """Refuse a malformed ``[limits]`` entry (a typo there would silently allow anything)."""
    if _is_range(limit) and limit[0] <= limit[1]:
        return
    if isinstance(limit, list) and limit and all(isinstance(x, str) for x in limit):
        return
    if limit in KINDS:
        return
    raise SettingsError(f"[limits] {key} = {limit!r} is not a limit: write [min, max], [min, max, \"open-min\" | "
                        f"\"open-max\" | \"open\"], a list of allowed strings, or one of {', '.join(KINDS)}")


def describe(limit: Any, integer: bool = False) -> str:
    """The allowed values in words, e.g. 'a whole number in [1, inf]' or 'one of full, lora'."""
    if _is_range(limit):
        lo_open, hi_open = OPEN_ENDS.get(limit[2], (False, False)) if len(limit) == 3 else (False, False)
        interval = f"{'(' if lo_open else '['}{limit[0]:g}, {limit[1]:g}{')' if hi_open else ']'}"
        return f"{'a whole number' if integer else 'a number'} in {interval}"
    if isinstance(limit, list):
        return "one of " + ", ".join(limit)
    return {"bool": "true or false", "text": "a string", "table": "a table"}[limit]


def _scalar_ok(value: Any, limit: Any, integer: bool) -> bool:
    if _is_range(limit):
        if not _is_number(value) or (integer and not isinstance(value, int)) or math.isnan(value):
            return False
        lo_open, hi_open = OPEN_ENDS.get(limit[2], (False, False)) if len(limit) == 3 else (False, False)
        above = value > limit[0] if lo_open else value >= limit[0]
        below = value < limit[1] if hi_open else value <= limit[1]
        return above and below
    if isinstance(limit, list):
        return isinstance(value, str) and value in limit
    return {"bool": isinstance(value, bool), "text": isinstance(value, str), "table": isinstance(value, dict)}[limit]


def _elements(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value)


def _integer(default: Any) -> bool:
    """Whether the profile file's value is a whole number (or a non-empty list/table of them)."""
    items = _elements(default) if isinstance(default, list | dict) else [default]
    return bool(items) and all(isinstance(x, int) and not isinstance(x, bool) for x in items)


def problem(key: str, value: Any, limit: Any, default: Any) -> str | None:
    """Why ``value`` breaks ``limit`` (``default``: the profile file's value, which fixes the shape and whether
    numbers must be whole), or None when it is allowed."""
    integer = _integer(default) and _is_range(limit)
    allowed = describe(limit, integer)
    if limit != "table" and isinstance(default, list | dict):
        shape = "a list" if isinstance(default, list) else "a table"
        if not isinstance(value, type(default)):
            return f"must be {shape} whose elements are each {allowed}"
        bad = [x for x in _elements(value) if not _scalar_ok(x, limit, integer)]
        return f"has element(s) {', '.join(map(repr, bad))}: each must be {allowed}" if bad else None
    return None if _scalar_ok(value, limit, integer) else f"must be {allowed}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def typed(value: Any, limit: Any, default: Any) -> Any:
    """``value`` (already checked against ``limit``) with the type its limit and the profile file's ``default``
    give it: a number setting the file does not hold as a whole number is a ``float``, also when given as ``1``
    (lists and tables element by element), so stages read settings with the right types and need no casts."""
    if not _is_range(limit) or _integer(default):
        return value
    if isinstance(value, list):
        return [float(x) for x in value]
    if isinstance(value, dict):
        return {k: float(x) for k, x in value.items()}
    return float(value)


def check_settings(stage: str, profile: str, params: dict[str, Any], defaults: dict[str, Any],
                   limits: dict[str, Any], origin: Callable[[str], str]) -> None:
    """Check every setting of ``params`` against ``limits``; ``defaults`` are the profile file's values and
    ``origin(key)`` names where a value came from. Raises one SettingsError listing every bad value."""
    where = f"profiles/{stage}.toml [limits]"
    missing = sorted(set(params) - set(limits))
    if missing:
        raise SettingsError(f"{where} declares no limit for {', '.join(missing)}: every setting of stage {stage!r} "
                            "needs one (see nbhelpers/profiles/limits.py)")
    for key, limit in limits.items():
        check_limit_entry(f"{where} {key}", limit)
    lines = []
    for key, value in params.items():
        why = problem(key, value, limits[key], defaults[key])
        if why:
            source = origin(key)
            fix = (f"give --set {key} a value within the limit, or leave it out (the profile's value is "
                   f"{_short(defaults[key])})" if source.startswith("--set") else f"change {key} in {source}")
            lines.append(f"  {key} = {_short(value)} (from {source}) {why}; fix: {fix}")
    if lines:
        raise SettingsError(f"stage {stage!r}, profile {profile!r}: {len(lines)} setting(s) out of range, nothing "
                            "was started:\n"
                            + "\n".join(lines))
