"""Per-stage wall-clock times of one call, for ``TrackResult.timings``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = self._lap = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Adds the time spent in the block to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def lap(self, name: str) -> None:
        """``timings[name]``: the time since the previous lap (or the stopwatch's start)."""
        now = time.perf_counter()
        self.timings[name] = now - self._lap
        self._lap = now

    def finish(self) -> dict[str, float]:
        """The stage times plus ``total`` since the stopwatch was made."""
        self.timings["total"] = time.perf_counter() - self._start
        return self.timings
