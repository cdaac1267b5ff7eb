"""The executions hosted by one executor process, and the drain protocol the node speaks.

`ExecutionHost` knows nothing of Ray: the executor actor in `kodosumid` is a thin shell
around it. The node drains all executions of a host with one long-poll call that also
carries its acknowledgements (the highest stored `seq` per execution), so events are
dropped here only after they are durable at the node, and a restarted node that drains
with its last stored `seq` gets every later event again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine import capture
from engine.buffer import ExecutionBuffer, StatusChange
from engine.calls import FlowCaller
from engine.files import FileBridge
from engine.runner import ExecutionRun
from engine.spec import ExecutionSpec
from kodosumi.errors import FailedPrecondition, NotFound
from kodosumi.v1 import event_pb2

# events: per execution, serialized Event messages in seq order;
# statuses: per execution, the (seq, status, reason) of status changes among those events.
DrainResult = tuple[dict[str, list[bytes]], dict[str, list[StatusChange]]]


class ExecutionHost:
    def __init__(
        self,
        *,
        buffer_capacity: int = 10_000,
        flow_caller: FlowCaller | None = None,
        files: FileBridge | None = None,
    ) -> None:
        self.buffer_capacity = buffer_capacity
        # Lets hosted flows call flows (`ctx.call_flow`); None: they cannot.
        self.flow_caller = flow_caller
        # Moves `ctx.files` and `ctx.save_file` bytes (engine/files.py); None: no files.
        self.files = files
        self._runs: dict[str, ExecutionRun] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._drain_waiting = False
        self._signalled = False
        self._rotation = 0
        capture.install()

    def _control_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
        return self._loop

    def _notify(self) -> None:
        # Called on every append, from any thread: wake a waiting drain at most once.
        if self._drain_waiting and not self._signalled and self._loop is not None:
            self._signalled = True
            wakeup = self._wakeup
            assert wakeup is not None
            self._loop.call_soon_threadsafe(wakeup.set)

    async def start(self, spec_data: dict[str, Any]) -> None:
        """Begin running an execution (answers as soon as its thread is started)."""
        loop = self._control_loop()
        spec = ExecutionSpec.from_dict(spec_data)
        if spec.execution_id in self._runs:
            return  # a retried start after a lost answer: already running
        buffer = ExecutionBuffer(
            spec.execution_id,
            first_seq=spec.first_seq,
            attempt=spec.attempt,
            capacity=self.buffer_capacity,
            on_append=self._notify,
        )
        run = ExecutionRun(spec, buffer, self.flow_caller, self.files)
        self._runs[spec.execution_id] = run
        run.start()
        if spec.timeout_seconds > 0:
            loop.call_later(
                spec.timeout_seconds,
                lambda: self._stop(
                    spec.execution_id,
                    event_pb2.EXECUTION_STATUS_TIMED_OUT,
                    f"timed out after {spec.timeout_seconds:g}s",
                ),
            )

    async def drain(
        self, acks: dict[str, int], max_events: int = 10_000, wait_seconds: float = 1.0
    ) -> DrainResult:
        """Acknowledge, then return unacknowledged events; waits up to `wait_seconds` for some."""
        self._control_loop()
        for execution_id, seq in acks.items():
            run = self._runs.get(execution_id)
            if run is None:
                continue
            run.buffer.ack(seq)
            if run.buffer.finished:
                # A flow abandoned after cancellation may still be running; its buffer is
                # sealed, so forgetting it loses nothing.
                del self._runs[execution_id]
        result = self._collect(max_events)
        if result[0] or wait_seconds <= 0:
            return result
        wakeup = self._wakeup
        assert wakeup is not None
        wakeup.clear()
        self._signalled = False
        self._drain_waiting = True
        try:
            result = self._collect(max_events)
            if not result[0]:
                try:
                    await asyncio.wait_for(wakeup.wait(), wait_seconds)
                except TimeoutError:
                    return {}, {}
                result = self._collect(max_events)
        finally:
            self._drain_waiting = False
        return result

    def _collect(self, max_events: int) -> DrainResult:
        events: dict[str, list[bytes]] = {}
        statuses: dict[str, list[StatusChange]] = {}
        runs = list(self._runs.values())
        if not runs:
            return events, statuses
        # Start at a rotating offset so one chatty execution cannot starve the others.
        self._rotation = (self._rotation + 1) % len(runs)
        budget = max_events
        for run in runs[self._rotation :] + runs[: self._rotation]:
            if budget <= 0:
                break
            if not run.buffer.has_unacked():
                continue
            batch, changes = run.buffer.peek(budget)
            if batch:
                events[run.spec.execution_id] = batch
                budget -= len(batch)
            if changes:
                statuses[run.spec.execution_id] = changes
        return events, statuses

    def _stop(self, execution_id: str, status: int, reason: str) -> bool:
        run = self._runs.get(execution_id)
        if run is None or not run.request_cancel(status, reason):
            return False
        loop = self._control_loop()
        loop.call_later(run.spec.cancel_grace_seconds, run.force_stop)
        return True

    async def cancel(self, execution_id: str, reason: str = "cancelled") -> None:
        """Cancel cooperatively; after the spec's grace period the flow is interrupted."""
        run = self._runs.get(execution_id)
        if run is None:
            raise NotFound(
                f"execution {execution_id} is not hosted here", reason="EXECUTION_NOT_FOUND"
            )
        if not self._stop(execution_id, event_pb2.EXECUTION_STATUS_CANCELLED, reason):
            raise FailedPrecondition(
                f"execution {execution_id} already ended", reason="EXECUTION_FINISHED"
            )

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, provided_by: str
    ) -> None:
        run = self._runs.get(execution_id)
        if run is None:
            raise NotFound(
                f"execution {execution_id} is not hosted here", reason="EXECUTION_NOT_FOUND"
            )
        run.provide_input(request_id, value, provided_by)

    def hosted(self) -> dict[str, int]:
        """Hosted execution ids with the highest seq assigned to each (for re-attaching)."""
        return {eid: run.buffer.last_seq for eid, run in self._runs.items()}

    def active_count(self) -> int:
        return sum(1 for run in self._runs.values() if not run.buffer.sealed)

    async def stop_all(self, reason: str) -> None:
        for execution_id in list(self._runs):
            self._stop(execution_id, event_pb2.EXECUTION_STATUS_CANCELLED, reason)
