"""Dispatch: hand a live execution to an executor and start its attempt there.

The executor gets a plain spec (the flow's entrypoint, the inputs, where the attempt's
`seq` starts); from then on the executor's drain loop (`drain.py`) is the execution's only
writer until the attempt ends.
"""

from __future__ import annotations

import logging
from typing import Any

from kodosumi.logs import bind_run
from kodosumi.v1 import event_pb2
from kodosumid.config import NodeConfig
from kodosumid.event_store import EventStore
from kodosumid.executions.drain import Drainer
from kodosumid.executions.live import LiveExecution
from kodosumid.executors.port import ExecutorGone, ExecutorPool

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self, config: NodeConfig, store: EventStore, pool: ExecutorPool, drainer: Drainer
    ) -> None:
        self.config = config
        self.store = store
        self.pool = pool
        self.drainer = drainer

    def spec(self, live: LiveExecution) -> dict[str, Any]:
        """What the executor needs to run the execution's current attempt."""
        return {
            "execution_id": live.execution_id,
            "flow": live.flow.name,
            "entrypoint": live.flow.entrypoint,
            "inputs": live.record.inputs,
            "first_seq": live.stored_seq + 1,
            "attempt": live.attempt,
            "max_attempts": live.flow.retry_attempts,
            "timeout_seconds": live.flow.timeout_seconds,
            "cancel_grace_seconds": self.config.cancel_grace_seconds,
            "owner": live.record.owner,
            "node_id": self.config.node_id,
            "traceparent": live.traceparent,
            "python_path": list(self.config.python_path),
        }

    async def dispatch(self, live: LiveExecution) -> None:
        execution_id = live.execution_id
        bind_run(execution_id, live.record.trace_id)
        drainer = self.drainer
        try:
            executor = await self.pool.acquire(live.flow.isolation)
        except Exception as e:
            log.exception("no executor for %s", execution_id)
            await drainer.end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, f"no executor: {e}")
            return
        executor.executions.add(execution_id)
        live.executor = executor
        await self.store.set_executor(execution_id, executor.name)
        drainer.ensure(executor)
        if live.cancel_requested:
            cancelled = event_pb2.EXECUTION_STATUS_CANCELLED
            await drainer.end_by_node(live, cancelled, live.cancel_reason)
            return
        try:
            await executor.start(self.spec(live))
        except ExecutorGone:
            return  # the drain loop sees the dead executor and ends the execution
        except Exception as e:
            log.exception("starting %s failed", execution_id)
            executor.executions.discard(execution_id)
            await drainer.end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, f"start failed: {e}")
