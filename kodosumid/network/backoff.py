"""Retry delays and the injected time sources of the node's network loops.

Registration, the registry feed and the execution relay all wait the same way: capped
exponential backoff with jitter while the other side is away. Time and randomness come in
from outside (`Clock`, `Sleep`, `Random`), so the loops are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kodosumi.errors import DeadlineExceeded, KodosumiError, Unavailable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]


@dataclass(frozen=True, slots=True)
class TimeSource:
    """Monotonic clock, sleep and a uniform random number in [0, 1): real ones by default."""

    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    random: Random = random.random


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry `attempt` (0, 1, 2, ...): `initial * factor**attempt`, capped at
    `maximum`, then "equal jitter": uniform in [delay/2, delay]. The jitter spreads the
    retries of many nodes that lost the same registry; the cap bounds the time between the
    registry's return and a node noticing it."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rand: Random) -> float:
        # min() before the power would overflow for large attempts; cap the exponent instead.
        exponent = min(attempt, 64)
        ceiling = min(self.maximum, self.initial * self.factor**exponent)
        return ceiling / 2 + rand() * ceiling / 2


def is_transient(error: KodosumiError) -> bool:
    """A failure of the link rather than an answer of the other side: worth a retry."""
    return isinstance(error, Unavailable | DeadlineExceeded)


def jittered(interval: float, rand: Random, spread: float = 0.1) -> float:
    """A heartbeat interval shortened by up to `spread` (never later than asked: the lease
    counts on it), so that nodes started together do not beat in lockstep."""
    return interval * (1 - spread * rand())
