"""The executor port in this process: `engine.host.ExecutionHost` without Ray.

For tests of the executions domain and for embedding the domain in another program; the
node daemon never imports this module (it runs executors on Ray, `ray_pool.py`). Flows run
in threads of this process, exactly as they do inside an executor actor.

`InProcessExecutor.crash` stands in for a lost executor process: from then on every call
raises `ExecutorGone`, as the Ray handles do when an actor dies, and the flows it hosted
are told to stop (threads cannot be killed; their later events go nowhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Mapping
from typing import Any

from engine.calls import FlowCaller
from engine.host import ExecutionHost
from kodosumi.v1 import event_pb2
from kodosumid.executors.port import (
    ANYWHERE,
    PROCESS,
    SHARED,
    DrainedEvents,
    DrainedStatuses,
    ExecutorGone,
    ExecutorHandle,
    Placement,
)


class InProcessExecutor:
    """One `ExecutionHost` behind the `ExecutorHandle` port."""

    def __init__(
        self,
        name: str,
        isolation: str,
        *,
        buffer_capacity: int = 10_000,
        flow_caller: FlowCaller | None = None,
        placement: Placement = ANYWHERE,
    ) -> None:
        self._name = name
        self._isolation = isolation
        self.placement = placement
        self.host = ExecutionHost(buffer_capacity=buffer_capacity, flow_caller=flow_caller)
        self.executions: set[str] = set()
        self.dead = False
        # Set by `crash`: why the executor is gone ("" while it runs).
        self.gone_reason = ""
        self._gone = asyncio.Event()

    @property
    def name(self) -> str:
        return self._name

    @property
    def isolation(self) -> str:
        return self._isolation

    def crash(self, reason: str = "its process exited unexpectedly") -> None:
        """Simulate the executor's process dying: calls fail with `ExecutorGone` from now on."""
        if self.gone_reason:
            return
        self.gone_reason = f"executor {self._name} died: {reason}"
        self._gone.set()
        for execution_id in self.host.hosted():
            # Nothing drains their events any more; stop them so that their threads end.
            self.host._stop(execution_id, event_pb2.EXECUTION_STATUS_CANCELLED, self.gone_reason)

    def _check(self) -> None:
        if self.gone_reason:
            raise ExecutorGone(self.gone_reason)

    async def start(self, spec: Mapping[str, Any]) -> None:
        self._check()
        await self.host.start(dict(spec))

    async def drain(
        self, acks: Mapping[str, int], max_events: int, wait_seconds: float
    ) -> tuple[DrainedEvents, DrainedStatuses]:
        self._check()
        drain = asyncio.ensure_future(self.host.drain(dict(acks), max_events, wait_seconds))
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({drain, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not drain.done():
            # The process died during the long poll: its answer never arrives.
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            self._check()
        return drain.result()

    async def cancel(self, execution_id: str, reason: str) -> None:
        self._check()
        await self.host.cancel(execution_id, reason)

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, provided_by: str
    ) -> None:
        self._check()
        await self.host.provide_input(execution_id, request_id, value, provided_by)

    async def hosted(self) -> dict[str, int]:
        self._check()
        return self.host.hosted()


def _own(handle: ExecutorHandle) -> InProcessExecutor:
    if not isinstance(handle, InProcessExecutor):
        raise TypeError(f"not an executor of this pool: {handle!r}")
    return handle


class InProcessExecutorPool:
    """Executors in this process: shared ones (many executions each, up to
    `max_executions_per_executor`) and one new executor per `process`-isolated execution."""

    def __init__(
        self,
        *,
        max_executions_per_executor: int = 250,
        buffer_capacity: int = 10_000,
        flow_caller: FlowCaller | None = None,
    ) -> None:
        self.max_executions_per_executor = max_executions_per_executor
        self.buffer_capacity = buffer_capacity
        self.flow_caller = flow_caller
        self.ready: asyncio.Future[None] | None = None
        self.shared: list[InProcessExecutor] = []
        self.isolated: list[InProcessExecutor] = []
        # Every executor ever handed out, newest last (tests pick the one to crash here).
        self.created: list[InProcessExecutor] = []
        self._numbers = itertools.count(1)

    def _new(self, isolation: str, placement: Placement) -> InProcessExecutor:
        name = f"inprocess-{isolation[0]}{next(self._numbers)}"
        executor = InProcessExecutor(
            name,
            isolation,
            buffer_capacity=self.buffer_capacity,
            flow_caller=self.flow_caller,
            placement=placement,
        )
        self.created.append(executor)
        return executor

    async def acquire(self, isolation: str, placement: Placement = ANYWHERE) -> ExecutorHandle:
        if self.ready is not None:
            await asyncio.shield(self.ready)
        if isolation == PROCESS:
            executor = self._new(PROCESS, placement)
            self.isolated.append(executor)
            return executor
        candidates = [
            e
            for e in self.shared
            if not e.dead
            and e.placement.key == placement.key
            and len(e.executions) < self.max_executions_per_executor
        ]
        if candidates:
            return min(candidates, key=lambda e: len(e.executions))
        executor = self._new(SHARED, placement)
        self.shared.append(executor)
        return executor

    def release(self, executor: ExecutorHandle, execution_id: str) -> None:
        own = _own(executor)
        own.executions.discard(execution_id)
        if own.isolation == PROCESS and not own.executions:
            self.forget(own)
            self.kill(own)

    def forget(self, executor: ExecutorHandle) -> None:
        own = _own(executor)
        own.dead = True
        for group in (self.shared, self.isolated):
            if own in group:
                group.remove(own)

    def kill(self, executor: ExecutorHandle) -> None:
        own = _own(executor)
        own.dead = True
        own.crash("it was stopped")

    async def survivors(self) -> list[ExecutorHandle]:
        """Nothing outlives the process that ran it."""
        return []

    @property
    def executors(self) -> list[ExecutorHandle]:
        return [*self.shared, *self.isolated]

    def counts(self) -> tuple[int, int]:
        return len(self.shared) + len(self.isolated), 0

    async def close(self) -> None:
        for executor in [*self.shared, *self.isolated]:
            self.kill(executor)
        self.shared.clear()
        self.isolated.clear()
