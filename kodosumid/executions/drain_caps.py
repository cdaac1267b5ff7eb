"""The caps a drained run is held to (the base of `drain.Drainer`): the bytes one local
execution may store (`[peers] max_execution_bytes`, EXECUTION_TOO_LARGE) and the cost ceiling
of a quoted run (`budget`, BUDGET_EXCEEDED). A run past either is cancelled on its executor
and ends FAILED with the reason, storing nothing more of it.
"""

from __future__ import annotations

import logging

from kodosumi.clock import Clock
from kodosumi.v1 import event_pb2
from kodosumid.event_store import EventStore
from kodosumid.executions.budget import BudgetPort
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.relay_loop import PositionFold
from kodosumid.executors.port import ExecutorHandle

log = logging.getLogger(__name__)

# Events read at once when counting an execution's stored bytes after a restart.
READ_BATCH = 500
# Acknowledges every event an executor still buffers for an execution ended by the node.
ACK_ALL = 1 << 62


def too_large_reason(max_bytes: int) -> str:
    return (
        f"EXECUTION_TOO_LARGE: the execution's events passed the {max_bytes} bytes "
        "one execution may store on this node (peers.max_execution_bytes); run cancelled"
    )


class DrainCaps:
    live: LiveTable
    store: EventStore
    clock: Clock
    # Bytes of events one local execution may store (0: no limit).
    max_bytes: int
    # Quoted runs' cost against their ceiling (None: this node makes no quotes).
    budget: BudgetPort | None
    _finished_acks: dict[str, dict[str, int]]

    async def append_by_node(self, live: LiveExecution, status: int, reason: str) -> int:
        raise NotImplementedError

    def _finish(self, live: LiveExecution, executor: ExecutorHandle | None) -> None:
        raise NotImplementedError

    async def _within_cap(self, live: LiveExecution, datas: list[bytes]) -> bool:
        """Count `datas` against the cap unless storing them would pass it."""
        if live.stored_bytes is None:  # first batch of this node's run: count the store
            fold = PositionFold()
            after = 0
            while rows := await self.store.read_events(live.execution_id, after, READ_BATCH):
                fold.feed(data for _, data in rows)
                after = rows[-1][0]
            live.stored_bytes = fold.stored_bytes
        size = sum(len(data) for data in datas)
        if live.stored_bytes + size > self.max_bytes:
            return False
        live.stored_bytes += size
        return True

    async def _stop_overdue(self, executor: ExecutorHandle) -> None:
        """End the executor's quoted runs whose run time passed their cost ceiling."""
        assert self.budget is not None
        now_ns = self.clock.now_ns()
        for eid in list(executor.executions):
            live = self.live.get(eid)
            reason = await self.budget.due(eid, now_ns) if live is not None else ""
            if live is not None and reason:
                await self._end_capped(live, executor, reason)

    async def _end_capped(
        self, live: LiveExecution, executor: ExecutorHandle | None, reason: str
    ) -> None:
        """Cancel the run on its executor and end it FAILED, storing nothing more of it."""
        execution_id = live.execution_id
        log.warning("execution %s: %s", execution_id, reason)
        live.cancel_requested, live.cancel_reason = True, reason
        live.cancelled.set()
        if executor is not None:
            try:
                await executor.cancel(execution_id, reason)
            except Exception as e:  # ended or gone already: the FAILED below still holds
                log.info("cancel of capped %s: %s", execution_id, e)
        await self.append_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, reason)
        executor = executor or live.executor
        self._finish(live, executor)
        if executor is not None:
            executor.executions.discard(execution_id)
            # Its buffered backlog (and whatever the cancelled run still writes) is dropped.
            self._finished_acks.setdefault(executor.name, {})[execution_id] = ACK_ALL
