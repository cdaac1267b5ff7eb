"""The one resumable-stream loop of the SDK: every long stream (an execution's events, the
node's alerts, the registry's change feed) reconnects through it when its link breaks.

A stream is a sequence of *attempts*. Each attempt is an async generator that opens one
gRPC stream from the last position its caller saw and yields items; it returns when the
stream is done, and raises `StreamBroken` (or lets a transport error out) when the link
went away. The loop then waits — capped exponential backoff with jitter, restarted after
every attempt that brought something new — and starts the next attempt, forever by
default, or until the policy's `max_attempts` attempts in a row or `give_up_after` seconds
of outage have passed (then `KodoclientError` UNAVAILABLE).

Callers are told what happens while they wait: `on_reconnect(attempt, delay, cause)` before
each wait, and `on_resumed(attempts)` once a new attempt brings something again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

import grpc

from kodoclient.errors import KodoclientError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# (attempt, seconds until it, why the stream broke)
ReconnectHook = Callable[[int, float, str], None]
# (how many reconnect attempts it took)
ResumedHook = Callable[[int], None]

# Words of gRPC core that mean "the transport went away" when a reset stream surfaces with
# a code other than UNAVAILABLE (a server stopped without grace cancels its streams).
_TRANSPORT_HINTS = (
    "RST_STREAM",
    "Socket closed",
    "Connection reset",
    "connection reset",
    "Stream removed",
    "GOAWAY",
    "Broken pipe",
)
# Codes of a failed call that mean the link, not the server's answer.
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a stream resumes after it breaks: capped exponential backoff with jitter.

    By default it never gives up: a watch outlives any outage of its node or registry.
    `max_attempts` bounds the attempts in a row that bring nothing new, `give_up_after`
    the seconds of such an outage; an attempt that delivers something resets both.
    """

    initial_backoff: float = 0.25
    max_backoff: float = 5.0
    multiplier: float = 2.0
    # Fraction of the delay drawn at random, so that many watchers of a restarted node
    # do not all come back in the same instant.
    jitter: float = 0.2
    max_attempts: int | None = None
    give_up_after: float | None = None

    def __post_init__(self) -> None:
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("need 0 <= initial_backoff <= max_backoff")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("need multiplier >= 1 and 0 <= jitter <= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("need max_attempts >= 1 (or None: never give up)")
        if self.give_up_after is not None and self.give_up_after <= 0:
            raise ValueError("need give_up_after > 0 seconds (or None: never give up)")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before reconnect number `attempt` (1 for the first)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return base * (1 - self.jitter * rng.random())


class StreamBroken(Exception):
    """Raised by an attempt: the link went away; resume from the last position."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def resumable_rpc_error(error: grpc.aio.AioRpcError) -> bool:
    """Whether a failed stream call means the link broke (worth resuming)."""
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED):
        details = error.details() or ""
        return any(hint in details for hint in _TRANSPORT_HINTS)
    return False


def transient(error: KodoclientError) -> bool:
    """A failure of the link (worth resuming), not an answer of the server."""
    return error.code in _TRANSIENT


@dataclass
class Resumer:
    """One stream's reconnect bookkeeping; `run` drives its attempts.

    `where()` names the position to resume from in messages ("seq 12", "revision 40").
    An attempt that makes progress without yielding (a `created` response) calls
    `progressed()`.
    """

    method: str
    policy: ReconnectPolicy
    rng: random.Random
    where: Callable[[], str]
    on_reconnect: ReconnectHook | None = None
    on_resumed: ResumedHook | None = None
    retry: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _progressed: bool = False

    def progressed(self) -> None:
        self._progressed = True

    async def run(
        self, attempt: Callable[[], AsyncGenerator[_T, None]]
    ) -> AsyncGenerator[_T, None]:
        failures = 0
        outage_since: float | None = None
        while True:
            self._progressed = False
            try:
                async with aclosing(attempt()) as items:
                    async for item in items:
                        self._mark(failures)
                        failures = 0
                        outage_since = None
                        yield item
                return
            except StreamBroken as e:
                cause = e.cause
            except grpc.aio.AioRpcError as e:
                if not (self.retry and resumable_rpc_error(e)):
                    raise KodoclientError.from_rpc(e, self.method) from None
                cause = f"{e.code().name}: {e.details()}"
            except KodoclientError as e:
                if not (self.retry and transient(e)):
                    raise
                cause = e.message
            if not self.retry:
                raise KodoclientError(grpc.StatusCode.UNAVAILABLE, cause, method=self.method)
            if self._progressed:
                self._mark(failures)
                failures, outage_since = 0, None
            failures += 1
            now = self.clock()
            outage_since = now if outage_since is None else outage_since
            self._check_budget(failures, now - outage_since, cause)
            delay = self.policy.delay(failures, self.rng)
            if self.policy.give_up_after is not None:
                # The last attempt comes at the deadline, not a backoff step after it.
                delay = min(delay, self.policy.give_up_after - (now - outage_since))
            if self.on_reconnect is not None:
                self.on_reconnect(failures, delay, cause)
            log.info(
                "%s broke (%s); resuming after %s in %.2fs", self.method, cause, self.where(), delay
            )
            await self.sleep(delay)

    def _mark(self, failures: int) -> None:
        """Something new arrived: tell a caller who saw us reconnecting that we are back."""
        if failures and self.on_resumed is not None:
            self.on_resumed(failures)

    def _check_budget(self, failures: int, outage: float, cause: str) -> None:
        policy = self.policy
        if policy.max_attempts is not None and failures > policy.max_attempts:
            why = f"after {policy.max_attempts} reconnect attempts"
        elif policy.give_up_after is not None and outage >= policy.give_up_after:
            why = f"after {outage:.1f} s of reconnecting (limit {policy.give_up_after:g} s)"
        else:
            return
        raise KodoclientError(
            grpc.StatusCode.UNAVAILABLE,
            f"{self.method} gave up {why} ({self.where()}): {cause}",
            method=self.method,
        )


async def read_to_end(responses: AsyncIterator[object], seconds: float = 2.0) -> None:
    """Read a stream's remaining responses until it ends (or fails, or `seconds` pass).

    Ends a call that is over or cancelled cleanly: a tracing interceptor ends its client span
    only when its response iterator finishes, which no one else would make it do.
    """
    try:
        async with asyncio.timeout(seconds):
            async for _ in responses:
                pass
    except (TimeoutError, StopAsyncIteration, grpc.aio.AioRpcError, RuntimeError):
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our own cancellation, not the call's
