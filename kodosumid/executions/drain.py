"""Draining executors into the store: the drain loop, store-then-publish, retry, executor death.

The path of an event: the engine appends it to its execution's buffer in an executor; one
drain loop per executor long-polls it, writes the batch to the store in one transaction,
publishes it to the watchers, and acknowledges it on its next drain call, after which the
executor may drop it. The node itself writes events only while no executor writes for the
execution (`append_by_node`): the first ones at launch, and a status when the executor is
gone or never started, so every execution has a single writer of its `seq`.

A relayed execution (`relay.py`) stores its batches through `store_and_publish` too.

A local execution may store at most `max_bytes` (`[peers] max_execution_bytes`) of events:
a flow writing events forever would otherwise fill the node's disk. The batch that would
pass it is not stored; the run is cancelled on its executor and the execution ends FAILED
(EXECUTION_TOO_LARGE). A relayed execution is held to the same cap by its relay loop.

The caps (bytes, cost ceiling) are `drain_caps.DrainCaps`, the drainer's base. A quoted local
run is metered against its cost ceiling (`budget`, kodosumid/market/meter.py):
the events up to the one that passes it are stored, the rest of the batch is not; a run
whose run time passes it is found after each drain call (about every second). Either way
the run is cancelled on its executor and ends FAILED (BUDGET_EXCEEDED).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from kodosumi.clock import Clock
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from kodosumid.event_store import AttemptUsage, EventStore, StatusChange
from kodosumid.executions import crashpoints
from kodosumid.executions.budget import BudgetPort
from kodosumid.executions.drain_caps import DrainCaps, too_large_reason
from kodosumid.executions.events import status_event
from kodosumid.executions.fanout import Batch, WatchHub
from kodosumid.executions.lifecycle import ExecutionObserver, tell_metered
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.metering import node_usage, usage_in
from kodosumid.executors.port import PROCESS, ExecutorGone, ExecutorHandle, ExecutorPool
from kodosumid.observability.run_trace import trace_of

log = logging.getLogger(__name__)


# Starts the next attempt of an execution (`dispatch.Dispatcher.dispatch`).
Dispatch = Callable[[LiveExecution], Awaitable[None]]


class Drainer(DrainCaps):
    def __init__(
        self,
        live: LiveTable,
        store: EventStore,
        hub: WatchHub,
        pool: ExecutorPool,
        observer: ExecutionObserver,
        *,
        batch_size: int,
        clock: Clock,
        max_bytes: int = 0,
        node_id: str = "",
    ) -> None:
        self.live = live
        # Where local attempts run (a relayed one's usage names its peer).
        self.node_id = node_id
        self.clock = clock
        self.store = store
        self.hub = hub
        self.pool = pool
        self.observer = observer
        self.batch_size = batch_size
        # Bytes of events one local execution may store (0: no limit).
        self.max_bytes = max_bytes
        # Set by the service: how a retry starts the next attempt.
        self.dispatch: Dispatch | None = None
        # Quoted runs' cost against their ceiling (None: this node makes no quotes).
        self.budget: BudgetPort | None = None
        self._loops: dict[str, asyncio.Task[None]] = {}
        # Per executor: executions that ended, with their last seq, still to acknowledge.
        self._finished_acks: dict[str, dict[str, int]] = {}

    # -- the drain loop -----------------------------------------------------------------------

    def ensure(self, executor: ExecutorHandle) -> None:
        """Start the executor's drain loop unless it runs."""
        if executor.name not in self._loops:
            # A fresh context: the loop serves every execution of the executor, not the one
            # whose dispatch started it (its log lines and spans must not name that one).
            task = asyncio.get_running_loop().create_task(
                self._loop(executor), context=contextvars.Context()
            )
            self._loops[executor.name] = task

    async def _loop(self, executor: ExecutorHandle) -> None:
        finished = self._finished_acks.setdefault(executor.name, {})
        try:
            while not executor.dead:
                acks = {}
                for eid in executor.executions:
                    live = self.live.get(eid)
                    if live is not None:
                        acks[eid] = live.stored_seq
                acks.update(finished)
                sent_finished = dict(finished)
                try:
                    events, statuses = await executor.drain(acks, self.batch_size, 1.0)
                except ExecutorGone as e:
                    if not executor.dead:
                        await self._executor_died(executor, e)
                    return
                for eid in sent_finished:
                    finished.pop(eid, None)
                crashpoints.reach("after_drain")
                if events:
                    await self.store_and_publish(executor, events, statuses)
                if self.budget is not None:
                    await self._stop_overdue(executor)
                if not executor.executions and executor.isolation == PROCESS and not finished:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("drain loop of %s failed", executor.name)
            await self._executor_died(executor, RuntimeError("drain loop failed"))
        finally:
            self._loops.pop(executor.name, None)

    async def stop(self) -> None:
        """Stop every drain loop (shutdown)."""
        for task in list(self._loops.values()):
            task.cancel()
        await asyncio.gather(*self._loops.values(), return_exceptions=True)

    # -- store, then publish ------------------------------------------------------------------

    async def store_and_publish(
        self,
        executor: ExecutorHandle | None,
        events: dict[str, list[bytes]],
        statuses: dict[str, list[tuple[int, int, str]]],
    ) -> None:
        """Store drained (or relayed) events, then publish them; act on the statuses among them."""
        batches: dict[str, tuple[int, list[bytes]]] = {}
        changes: dict[str, list[StatusChange]] = {}
        too_large: list[LiveExecution] = []
        over_budget: list[tuple[LiveExecution, str]] = []
        for eid, drained in events.items():
            live = self.live.get(eid)
            if live is None or not drained:
                continue
            first = event_pb2.Event.FromString(drained[0]).seq
            datas = drained
            if first <= live.stored_seq:  # already stored (re-sent after a restart)
                datas = drained[live.stored_seq - first + 1 :]
                first = live.stored_seq + 1
            if not datas:
                continue
            if first != live.stored_seq + 1:
                log.error("gap in %s: stored %d, next %d", eid, live.stored_seq, first)
            if self.budget is not None and not live.peer:
                keep, why = await self.budget.admit(eid, datas)
                if why:  # the run passed its ceiling at the last event kept
                    datas = datas[:keep]
                    over_budget.append((live, why))
                    if not datas:
                        continue
            # A relayed execution's stream is capped by its relay loop.
            if self.max_bytes and not live.peer and not await self._within_cap(live, datas):
                too_large.append(live)
                continue
            batches[eid] = (first, datas)
            last = first + len(datas) - 1
            changes[eid] = [
                StatusChange(*s) for s in statuses.get(eid, ()) if first <= s[0] <= last
            ]
        for live in too_large:
            await self._end_capped(live, executor, too_large_reason(self.max_bytes))
        if batches:
            await self._store_batches(executor, batches, changes)
        for live, why in over_budget:
            if live.execution_id in self.live:
                await self._end_capped(live, executor, why)

    async def _store_batches(
        self,
        executor: ExecutorHandle | None,
        batches: dict[str, tuple[int, list[bytes]]],
        changes: dict[str, list[StatusChange]],
    ) -> None:
        usage = self._usage_of(batches)
        await self.store.append(batches, changes, usage)
        crashpoints.reach("after_store")
        for eid, (first, datas) in batches.items():
            live = self.live.get(eid)
            assert live is not None
            live.stored_seq = first + len(datas) - 1
            terminal_seq = 0
            retrying = False
            for change in changes.get(eid, ()):
                live.status = change.status
                if change.status in TERMINAL:
                    terminal_seq = change.seq
                retrying = change.status == event_pb2.EXECUTION_STATUS_RETRYING
            self.hub.publish(eid, Batch(first, datas, terminal_seq))
            self.observer.stored(live.record, len(datas), changes.get(eid, []))
            if eid in usage:
                live.metered.update(a.attempt for a in usage[eid])
                tell_metered(self.observer, live.record, usage[eid])
            if terminal_seq:
                self._finish(live, executor)
            elif retrying and not live.peer:  # a relayed execution's peer runs its retries
                self._end_attempt(live, executor)
                self.live.spawn(self._retry(live))
        crashpoints.reach("after_publish")

    def _usage_of(
        self, batches: dict[str, tuple[int, list[bytes]]]
    ) -> dict[str, list[AttemptUsage]]:
        """The `Usage` events in the batches (docs/market.md), stored with them."""
        found: dict[str, list[AttemptUsage]] = {}
        now = self.clock.now_ns()
        for eid, (_, datas) in batches.items():
            live = self.live.get(eid)
            if live is None:
                continue
            usage = usage_in(datas, node=live.peer or self.node_id, groups=live.groups, at_ns=now)
            if usage:
                found[eid] = usage
        return found

    async def append_by_node(self, live: LiveExecution, status: int, reason: str) -> int:
        """Write a status event for an execution no executor writes for right now."""
        execution_id = live.execution_id
        seq = live.stored_seq + 1
        data = status_event(
            execution_id,
            seq,
            live.attempt,
            status,
            time_unix_nano=self.clock.now_ns(),
            reason=reason,
            trace_ids=trace_of(live.traceparent).ids,
        )
        # An attempt the node ends itself (no executor writes for it) has no usage from its
        # engine unless it sent it before: the node records one from the stored events.
        usage: list[AttemptUsage] = []
        if (
            status in TERMINAL or status == event_pb2.EXECUTION_STATUS_RETRYING
        ) and not await self._metered(live):
            usage = [
                await node_usage(
                    self.store,
                    live.record,
                    live.attempt,
                    reason,
                    node=live.peer or self.node_id,
                    groups=live.groups,
                    now_ns=self.clock.now_ns(),
                )
            ]
        await self.store.append(
            {execution_id: (seq, [data])},
            {execution_id: [StatusChange(seq, status, reason)]},
            {execution_id: usage} if usage else None,
        )
        live.stored_seq, live.status = seq, status
        if live.stored_bytes is not None:
            live.stored_bytes += len(data)
        self.hub.publish(execution_id, Batch(seq, [data], seq if status in TERMINAL else 0))
        self.observer.stored(live.record, 1, [StatusChange(seq, status, reason)])
        if usage:
            live.metered.add(live.attempt)
            tell_metered(self.observer, live.record, usage)
        return seq

    async def _metered(self, live: LiveExecution) -> bool:
        """Whether the current attempt's usage is stored (asked of the store once this node
        has not seen it: a node restarted after the engine's Usage event was stored)."""
        if live.attempt not in live.metered and any(
            a.attempt == live.attempt for a in await self.store.usage_of(live.execution_id)
        ):
            live.metered.add(live.attempt)
        return live.attempt in live.metered

    async def end_by_node(self, live: LiveExecution, status: int, reason: str) -> None:
        """Write the terminal status for an execution no executor writes for any more."""
        if live.execution_id not in self.live:
            return
        await self.append_by_node(live, status, reason)
        executor = live.executor
        self._finish(live, None)
        if executor is not None:
            executor.executions.discard(live.execution_id)
            if executor.isolation == PROCESS and not executor.dead:
                self.pool.release(executor, live.execution_id)

    def _finish(self, live: LiveExecution, executor: ExecutorHandle | None) -> None:
        execution_id = live.execution_id
        self.live.pop(execution_id)
        if self.budget is not None:
            self.budget.forget(execution_id)
        live.done.set()
        if executor is not None:
            self._finished_acks.setdefault(executor.name, {})[execution_id] = live.stored_seq
            self.pool.release(executor, execution_id)

    # -- retry --------------------------------------------------------------------------------

    def _end_attempt(self, live: LiveExecution, executor: ExecutorHandle | None) -> None:
        """An attempt ended (RETRYING): its executor lets go of it, the execution stays live."""
        live.executor = None
        if executor is not None:
            self._finished_acks.setdefault(executor.name, {})[live.execution_id] = live.stored_seq
            self.pool.release(executor, live.execution_id)

    async def _retry(self, live: LiveExecution) -> None:
        """Start the next attempt after the flow's backoff (a cancel ends the wait)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.cancelled.wait(), live.flow.retry_backoff_seconds)
        if live.cancel_requested:
            await self.end_by_node(live, event_pb2.EXECUTION_STATUS_CANCELLED, live.cancel_reason)
            return
        live.record = replace(live.record, attempt=live.attempt + 1)
        await self.store.set_attempt(live.execution_id, live.attempt)
        assert self.dispatch is not None
        await self.dispatch(live)

    # -- executor death -----------------------------------------------------------------------

    async def _executor_died(self, executor: ExecutorHandle, error: BaseException) -> None:
        self.pool.forget(executor)
        self._finished_acks.pop(executor.name, None)
        if isinstance(error, ExecutorGone):
            died = str(error)  # one line, made for users by the executor port
        else:
            cause = str(error).strip().splitlines()[0] if str(error).strip() else ""
            died = f"executor {executor.name} died: {cause[:300] or type(error).__name__}"
        for eid in list(executor.executions):
            live = self.live.get(eid)
            if live is None:
                continue
            reason = died
            if live.cancel_requested:
                await self.end_by_node(
                    live, event_pb2.EXECUTION_STATUS_CANCELLED, live.cancel_reason
                )
            elif live.attempts_left:
                reason = f"attempt {live.attempt} of {live.flow.retry_attempts} failed: {reason}"
                await self.append_by_node(live, event_pb2.EXECUTION_STATUS_RETRYING, reason)
                live.executor = None
                self.live.spawn(self._retry(live))
            else:
                await self.end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, reason)
        executor.executions.clear()
