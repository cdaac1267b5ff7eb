"""Wall-clock time, injected: daemons read it through a `Clock` so that tests set it.

The registry's leases and the node's executions both take a `Clock`; `SystemClock` is the
real one, `ManualClock` moves only when told to.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in seconds since the Unix epoch."""
        ...

    def now_ns(self) -> int:
        """The same in nanoseconds (event and execution timestamps)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def now_ns(self) -> int:
        return int(self._now * 1e9)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now += seconds
        return self._now
