"""Dispatch: hand a live execution to an executor, start its attempt there, stop it there.

The executor gets a plain spec (the flow's entrypoint, the inputs, where the attempt's
`seq` starts); from then on the executor's drain loop (`drain.py`) is the execution's only
writer until the attempt ends.

A cancel reaches the executor only once the attempt's start did: one that comes while the
start is on its way is passed on by the dispatch right after it, so no cancel is lost and
none meets an executor that does not know the execution yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kodosumi.errors import KodosumiError
from kodosumi.logs import bind_run
from kodosumi.v1 import event_pb2
from kodosumid.config import NodeConfig
from kodosumid.event_store import EventStore
from kodosumid.executions.drain import Drainer
from kodosumid.executions.launch_files import LaunchFiles
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executors.placement import merged
from kodosumid.executors.port import PROCESS, ExecutorGone, ExecutorHandle, ExecutorPool

log = logging.getLogger(__name__)

# Extra time, beyond the cancel grace, before an isolated executor is killed outright.
KILL_MARGIN_SECONDS = 2.0


class Dispatcher:
    def __init__(
        self,
        config: NodeConfig,
        live: LiveTable,
        store: EventStore,
        pool: ExecutorPool,
        drainer: Drainer,
    ) -> None:
        self.config = config
        self.live = live
        self.store = store
        self.pool = pool
        self.drainer = drainer
        # The node's file store: the input files go with each start (None: no files).
        self.files: LaunchFiles | None = None

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
            "isolation": live.flow.isolation,
        }

    async def dispatch(self, live: LiveExecution) -> None:
        execution_id = live.execution_id
        bind_run(execution_id, live.record.trace_id)
        drainer = self.drainer
        live.started = False
        try:
            executor = await self.pool.acquire(
                live.flow.isolation, merged(live.flow.placement, live.placement)
            )
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
            spec = self.spec(live)
            if self.files is not None:
                spec["files"] = await self.files.inputs_of(execution_id)
            await executor.start(spec)
        except ExecutorGone:
            return  # the drain loop sees the dead executor and ends the execution
        except Exception as e:
            log.exception("starting %s failed", execution_id)
            executor.executions.discard(execution_id)
            await drainer.end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, f"start failed: {e}")
            return
        live.started = True
        if live.cancel_requested:
            # Cancelled while the start was on its way: the executor hears of it now. The
            # attempt may have ended already; the drain loop records whatever it did.
            with contextlib.suppress(KodosumiError):
                await self.cancel(live)

    async def cancel(self, live: LiveExecution) -> None:
        """Tell the executor of a started attempt to cancel it (`live.cancel_reason`).

        Raises the executor's catalog error, except for an attempt that already ended."""
        executor = live.executor
        if executor is None or not live.started:
            return  # not started yet: the dispatch passes the cancel on once it is
        try:
            await executor.cancel(live.execution_id, live.cancel_reason)
        except KodosumiError as e:
            if e.reason == "EXECUTION_FINISHED":
                return
            raise
        except ExecutorGone:
            pass  # the drain loop ends the execution as cancelled
        if executor.isolation == PROCESS:
            self.live.spawn(self._kill_if_stuck(live, executor))

    async def _kill_if_stuck(self, live: LiveExecution, executor: ExecutorHandle) -> None:
        """Hard stop for a flow in a process of its own that ignores cancellation."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                live.done.wait(), self.config.cancel_grace_seconds + KILL_MARGIN_SECONDS
            )
            return
        log.warning("killing executor %s: execution did not stop", executor.name)
        self.pool.kill(executor)
