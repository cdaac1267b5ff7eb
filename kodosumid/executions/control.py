"""Acting on a running execution: cancel it, answer its request for input.

Both go to whoever writes the execution now: its executor, or the peer it is relayed from.
An execution not dispatched yet (or between attempts) is cancelled by the node itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kodosumi.authz import Principal
from kodosumi.errors import FailedPrecondition, InvalidArgument, KodosumiError, Unavailable
from kodosumi.v1 import event_pb2
from kodosumid.event_store import ExecutionRecord
from kodosumid.executions.access import Access
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.relay import Relayer
from kodosumid.executors.port import PROCESS, ExecutorGone, ExecutorHandle, ExecutorPool

log = logging.getLogger(__name__)

# Extra time, beyond the cancel grace, before an isolated executor is killed outright.
KILL_MARGIN_SECONDS = 2.0


class Control:
    def __init__(
        self,
        live: LiveTable,
        access: Access,
        pool: ExecutorPool,
        relayer: Relayer | None,
        *,
        cancel_grace_seconds: float,
    ) -> None:
        self.live = live
        self.access = access
        self.pool = pool
        self.relayer = relayer
        self.cancel_grace_seconds = cancel_grace_seconds

    async def cancel(self, principal: Principal, execution_id: str, reason: str) -> ExecutionRecord:
        record = await self.access.visible(principal, execution_id)
        live = self.live.get(execution_id)
        if record.terminal or live is None:
            raise FailedPrecondition(
                f"execution {execution_id} already ended "
                f"({event_pb2.ExecutionStatus.Name(record.status)})",  # type: ignore[arg-type]
                reason="EXECUTION_FINISHED",
            )
        if live.cancel_requested:
            return record
        reason = reason or f"cancelled by {principal.id}"
        if live.peer:
            assert self.relayer is not None
            await self.relayer.cancel(live, reason)
            return record
        live.cancel_requested = True
        live.cancel_reason = reason
        live.cancelled.set()
        executor = live.executor
        if executor is None:
            return record  # not dispatched (or between attempts): ended as cancelled there
        try:
            await executor.cancel(execution_id, live.cancel_reason)
        except KodosumiError as e:
            if e.reason == "EXECUTION_FINISHED":
                return record
            raise
        except ExecutorGone:
            pass  # the drain loop ends the execution as cancelled
        if executor.isolation == PROCESS:
            self.live.spawn(self._kill_if_stuck(live, executor))
        return record

    async def _kill_if_stuck(self, live: LiveExecution, executor: ExecutorHandle) -> None:
        """Hard stop for a flow in a process of its own that ignores cancellation."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                live.done.wait(), self.cancel_grace_seconds + KILL_MARGIN_SECONDS
            )
            return
        log.warning("killing executor %s: execution did not stop", executor.name)
        self.pool.kill(executor)

    async def provide_input(
        self, principal: Principal, execution_id: str, request_id: str, value: Any
    ) -> None:
        if not request_id:
            raise InvalidArgument.field("request_id", "required")
        record = await self.access.visible(principal, execution_id)
        live = self.live.get(execution_id)
        if record.terminal or live is None:
            raise FailedPrecondition(
                f"execution {execution_id} already ended", reason="EXECUTION_FINISHED"
            )
        if live.peer and self.relayer is not None:
            await self.relayer.provide_input(live, request_id, value)
            return
        if live.executor is None:
            raise FailedPrecondition(
                f"execution {execution_id} awaits no input", reason="NO_INPUT_AWAITED"
            )
        try:
            await live.executor.provide_input(execution_id, request_id, value, principal.id)
        except ExecutorGone:
            raise Unavailable(f"the executor of {execution_id} is gone") from None
