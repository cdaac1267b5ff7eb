"""Test doubles at the edge of the loops: scripted remote sides and a fake time source, so
registration, the registry feed and the relay are tested without sleeping."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kodosumid.network.backoff import TimeSource


@dataclass
class FakeTime:
    """A clock that moves only by the sleeps taken. `block`: sleeps never end by themselves
    (only what races them, such as a refresh, wakes the loop)."""

    now: float = 0.0
    rand: float = 0.5
    block: bool = False
    sleeps: list[float] = field(default_factory=list)

    def source(self) -> TimeSource:
        return TimeSource(clock=lambda: self.now, sleep=self.sleep, random=lambda: self.rand)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.block:
            await asyncio.Event().wait()
        self.now += seconds
        await asyncio.sleep(0)


class Script:
    """Answers calls from a list of outcomes (a value, or an exception to raise). When the
    list runs out the caller parks forever and `parked` is set: the scenario is over."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = deque(outcomes)
        self.calls: list[tuple[str, Any]] = []
        self.parked = asyncio.Event()

    async def answer(self, name: str, argument: Any = None) -> Any:
        self.calls.append((name, argument))
        if not self.outcomes:
            self.parked.set()
            await asyncio.Event().wait()
        outcome = self.outcomes.popleft()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


async def until(check: Callable[[], bool], *, turns: int = 10_000) -> None:
    """Let the event loop run until `check` holds (no wall-clock time involved)."""
    for _ in range(turns):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
