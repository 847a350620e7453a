"""A wall-clock budget that training loops poll so they stop, save and say "resume needed" before
Kaggle's 12-hour limit (or any other) kills the session."""

from __future__ import annotations

import os
import time

from .env import detect_platform


def process_start_time() -> float:
    """When the session started (epoch seconds): $TTS_SESSION_START, which a notebook hands to the stages it runs
    as child processes (the kernel's own start), else when this process started (a kernel or a shell command)."""
    if os.environ.get("TTS_SESSION_START"):
        return float(os.environ["TTS_SESSION_START"])
    try:
        import psutil

        return psutil.Process().create_time()
    except ImportError:
        return time.time()


class TimeBudget:
    """``seconds`` of wall time counted from ``start``, minus ``margin`` kept for the final save.

    ``should_stop()`` is true once the time left is less than the margin plus the longest step seen, so a
    loop that polls it after every step stops before the next step could overrun the budget.
    """

    def __init__(self, seconds: float, margin: float = 0.0, start: float | None = None, clock=time.time):
        if seconds <= 0:
            raise ValueError(f"a time budget must be positive, got {seconds} s")
        self.seconds, self.margin, self.clock = float(seconds), float(margin), clock
        self.start = clock() if start is None else start
        self._last_tick: float | None = None
        self.longest_step = 0.0

    @classmethod
    def from_profile(cls, params: dict, *, session_start: bool | None = None) -> TimeBudget:
        """Build from a profile's ``budget_hours`` and ``budget_margin_minutes``. On Kaggle the budget counts
        from the start of the session (this process), elsewhere from now."""
        if session_start is None:
            session_start = detect_platform().startswith("kaggle")
        start = process_start_time() if session_start else None
        return cls(params["budget_hours"] * 3600, params.get("budget_margin_minutes", 0) * 60, start)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def tick(self) -> None:
        """Call once per step: remembers the longest step so should_stop can look one step ahead."""
        now = self.clock()
        if self._last_tick is not None:
            self.longest_step = max(self.longest_step, now - self._last_tick)
        self._last_tick = now

    def should_stop(self) -> bool:
        return self.remaining() <= self.margin + self.longest_step

    def __repr__(self) -> str:
        return f"TimeBudget(remaining={self.remaining():.0f}s, margin={self.margin:.0f}s)"
