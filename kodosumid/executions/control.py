"""Acting on a running execution: cancel it, answer its request for input.

Both go to whoever writes the execution now: its executor, or the peer it is relayed from.
An execution not dispatched yet (or between attempts) is cancelled by the node itself.
"""

from __future__ import annotations

from typing import Any

from kodosumi.authz import Principal
from kodosumi.errors import FailedPrecondition, InvalidArgument, Unavailable
from kodosumi.v1 import event_pb2
from kodosumid.event_store import ExecutionRecord
from kodosumid.executions.access import Access
from kodosumid.executions.dispatch import Dispatcher
from kodosumid.executions.live import LiveTable
from kodosumid.executions.relay import Relayer
from kodosumid.executors.port import ExecutorGone
from kodosumid.observability.run_trace import join_run


class Control:
    def __init__(
        self,
        live: LiveTable,
        access: Access,
        dispatcher: Dispatcher,
        relayer: Relayer | None,
    ) -> None:
        self.live = live
        self.access = access
        self.dispatcher = dispatcher
        self.relayer = relayer

    async def cancel(self, principal: Principal, execution_id: str, reason: str) -> ExecutionRecord:
        record = await self.access.visible(principal, execution_id)
        live = self.live.get(execution_id)
        join_run(record.execution_id, record.trace_id, live.traceparent if live else "")
        if record.terminal or live is None:
            ended = event_pb2.ExecutionStatus.Name(record.status)  # type: ignore[arg-type]
            raise FailedPrecondition(
                f"execution {execution_id} already ended "
                f"({ended.removeprefix('EXECUTION_STATUS_')})",
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
        # Not dispatched, between attempts, or starting: ended or passed on by the dispatch.
        await self.dispatcher.cancel(live)
        return record

    async def provide_input(
        self, principal: Principal, execution_id: str, request_id: str, value: Any
    ) -> None:
        if not request_id:
            raise InvalidArgument.field("request_id", "required")
        record = await self.access.visible(principal, execution_id)
        live = self.live.get(execution_id)
        join_run(record.execution_id, record.trace_id, live.traceparent if live else "")
        if record.terminal or live is None:
            raise FailedPrecondition(
                f"execution {execution_id} already ended", reason="EXECUTION_FINISHED"
            )
        if live.peer and self.relayer is not None:
            await self.relayer.provide_input(live, request_id, value)
            return
        if live.executor is None or not live.started:
            raise FailedPrecondition(
                f"execution {execution_id} awaits no input", reason="NO_INPUT_AWAITED"
            )
        try:
            await live.executor.provide_input(execution_id, request_id, value, principal.id)
        except ExecutorGone:
            raise Unavailable(f"the executor of {execution_id} is gone") from None
