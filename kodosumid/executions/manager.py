"""Executions on this node: launch, drain, store, fan out, watch, cancel, answer, recover.

Domain logic only: it takes plain objects (a Principal, dicts) and raises catalog errors;
the servicer around it is the only part that knows gRPC.

The path of an event: the engine appends it to its execution's buffer in an executor
actor; one drain loop per executor long-polls the actor, writes the batch to the store in
one transaction, publishes it to the watchers, and acknowledges it on its next drain call,
after which the actor may drop it. The node itself writes events only while no executor
writes for the execution: the first ones at launch, and a terminal status when the
executor is gone or never started, so every execution has a single writer of its `seq`.

A flow this node does not offer is launched on a peer that does (`executions/relay.py`):
the execution keeps the peer's id and `seq` numbers here, and a relay task takes the drain
loop's place as its single writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from kodosumi.authz import NODE, Principal
from kodosumi.errors import (
    FailedPrecondition,
    InvalidArgument,
    KodosumiError,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.logs import bind_run
from kodosumi.schema import violations
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.v1 import event_pb2
from kodosumid.auth.roles import check_flow_access
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry, NodeConfig
from kodosumid.event_store import TERMINAL, EventStore, ExecutionRecord, Page, StatusChange
from kodosumid.executions import crashpoints
from kodosumid.executions.fanout import Batch, WatchHub
from kodosumid.executions.lifecycle import ExecutionObserver, Observers
from kodosumid.executions.relay import (
    PeerExecutions,
    RelayPosition,
    RelaySettings,
    peer_executor,
    peer_of,
    relay,
    relay_position,
    status_changes,
)
from kodosumid.executors.port import PROCESS, ExecutorGone, ExecutorHandle, ExecutorPool
from kodosumid.observability.run_trace import launch_trace, resumed_trace, trace_of

log = logging.getLogger(__name__)

READ_BATCH = 2000
SQLITE_MAX_INT = 2**63 - 1
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
# Extra time, beyond the cancel grace, before an isolated executor is killed outright.
KILL_MARGIN_SECONDS = 2.0


@dataclass(eq=False)
class LiveExecution:
    record: ExecutionRecord
    flow: FlowEntry
    stored_seq: int
    status: int
    executor: ExecutorHandle | None = None
    # The peer node that runs it, for an execution relayed from there.
    peer: str = ""
    # W3C context of the launch: the parent of every attempt's execution span.
    traceparent: str = ""
    cancel_requested: bool = False
    cancel_reason: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Set on cancel: wakes a pause between attempts.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def attempt(self) -> int:
        return self.record.attempt

    @property
    def attempts_left(self) -> bool:
        return self.record.attempt < self.flow.retry_attempts


def _status_event(
    execution_id: str,
    seq: int,
    attempt: int,
    status: int,
    reason: str = "",
    trace_ids: tuple[str, str] = ("", ""),
) -> bytes:
    event = event_pb2.Event(execution_id=execution_id, seq=seq, attempt=attempt)
    event.trace_id, event.span_id = trace_ids
    event.time_unix_nano = time.time_ns()
    event.status_changed.status = status  # type: ignore[assignment]
    event.status_changed.reason = reason
    return event.SerializeToString()


def with_defaults(schema: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Fill top-level inputs the caller left out with their schema `default`, as a form would."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return inputs
    filled = dict(inputs)
    for name, prop in properties.items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            filled[name] = prop["default"]
    return filled


class ExecutionManager:
    def __init__(
        self,
        config: NodeConfig,
        catalog: Catalog,
        store: EventStore,
        hub: WatchHub,
        pool: ExecutorPool,
        peers: PeerExecutions | None = None,
        observer: ExecutionObserver | None = None,
        identity: str = "",
    ) -> None:
        self.config = config
        # This node's own SPIFFE id ("" when insecure): its executors may dial it with it.
        self.identity = identity
        # Metrics and alert rules (kodosumid/executions/lifecycle.py): told of everything stored.
        self.observer: ExecutionObserver = observer or Observers()
        self.catalog = catalog
        self.store = store
        self.hub = hub
        self.pool = pool
        self.peers = peers if config.peers.forward else None
        self.relay_settings = RelaySettings(grace_seconds=config.peers.relay_grace_seconds)
        self._live: dict[str, LiveExecution] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._finished_acks: dict[str, dict[str, int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- queries ------------------------------------------------------------------------------

    def counts(self) -> dict[int, int]:
        result: dict[int, int] = {}
        for live in self._live.values():
            result[live.status] = result.get(live.status, 0) + 1
        return result

    async def _visible(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        if not execution_id:
            raise InvalidArgument.field("execution_id", "required")
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}", reason="EXECUTION_NOT_FOUND")
        if not principal.may_act_on(record.owner) and not await self._launched_by(
            principal, record
        ):
            # Execution ids are random 128-bit values, so saying that one exists leaks
            # nothing guessable; the caller learns why instead of a misleading NOT_FOUND.
            raise PermissionDenied(
                f"execution {execution_id} belongs to another user",
                reason="NOT_YOUR_EXECUTION",
            )
        return record

    def _speaks_for(self, principal: Principal, parent: ExecutionRecord) -> bool:
        """Whether the caller is the parent's own flow on this node: this node itself (its
        executors dial with the node's certificate when the flow has no identity of its
        own) or the identity `flow/<this node>/<parent's flow>`. Such a caller acts for the
        parent's owner; its children belong to that owner."""
        if principal.identity is None or parent.node_id != self.config.node_id:
            return False
        if self.identity and principal.id == self.identity:
            return True
        try:
            flow_id = SpiffeId.flow(
                principal.identity.trust_domain, self.config.node_id, parent.flow
            )
        except InvalidSpiffeId:
            return False
        return principal.id == str(flow_id)

    async def _launched_by(self, principal: Principal, record: ExecutionRecord) -> bool:
        """A child is visible to the flow that launched it (which acts for the child's owner)."""
        if not record.parent_execution_id:
            return False
        parent = await self.store.get_execution(record.parent_execution_id)
        return parent is not None and self._speaks_for(principal, parent)

    async def _parent(self, principal: Principal, parent_execution_id: str) -> ExecutionRecord:
        """The parent of a child launch: on this node, and the caller may act for it."""
        parent = await self.store.get_execution(parent_execution_id)
        if parent is None:
            raise InvalidArgument.field(
                "parent_execution_id", f"no execution {parent_execution_id!r} on this node"
            )
        if not (principal.may_act_on(parent.owner) or self._speaks_for(principal, parent)):
            raise PermissionDenied(
                f"execution {parent_execution_id} belongs to another user",
                reason="NOT_YOUR_EXECUTION",
            )
        return parent

    async def get(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        return await self._visible(principal, execution_id)

    async def list_executions(
        self,
        principal: Principal,
        *,
        statuses: list[int],
        flow: str,
        page_size: int,
        page_token: str,
    ) -> Page:
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        for status in statuses:
            if status not in event_pb2.ExecutionStatus.values():
                raise InvalidArgument.field("statuses", f"unknown status {status}")
        return await self.store.list_executions(
            owner=None if principal.privileged else principal.id,
            statuses=statuses,
            flow=flow,
            page_size=min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
            page_token=page_token,
        )

    # -- launch -------------------------------------------------------------------------------

    async def launch(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        forwarded: bool = False,
        parent_execution_id: str = "",
    ) -> ExecutionRecord:
        """`forwarded`: a peer forwarded this launch here; it is never forwarded again.

        `parent_execution_id`: the execution (on this node) whose flow launches this one.
        The child belongs to the parent's owner when the caller is the parent's own flow
        (`_speaks_for`), else to the caller, who must be allowed to act on the parent.
        """
        if self._closing:
            raise Unavailable("the node is shutting down", reason="NODE_SHUTTING_DOWN")
        owner = principal.id
        parent: ExecutionRecord | None = None
        if parent_execution_id:
            parent = await self._parent(principal, parent_execution_id)
            if self._speaks_for(principal, parent):
                owner = parent.owner
        try:
            flow = self.catalog.get(flow_name)
        except NotFound:
            # Peers do not forward again; this node's own executors (a flow calling a flow
            # with the node's certificate) do.
            from_peer = NODE in principal.roles and principal.id != self.identity
            if self.peers is None or forwarded or from_peer:
                raise
            return await self._launch_on_peer(
                self.peers, principal, flow_name, inputs, owner=owner, parent=parent
            )
        check_flow_access(principal, flow)  # the catalog's per-flow allow-list (auth)
        bad = violations(flow.input_schema, inputs, root="inputs")
        if bad:
            raise InvalidArgument(
                f"inputs do not match the schema of flow {flow.name!r}: "
                + "; ".join(f"{v.field}: {v.description}" for v in bad),
                violations=bad,
                reason="INVALID_INPUTS",
            )
        inputs = with_defaults(flow.input_schema, inputs)
        execution_id = uuid.uuid4().hex
        run = launch_trace(execution_id, flow.name, principal.id)
        bind_run(execution_id, run.trace_id)
        record = ExecutionRecord(
            execution_id=execution_id,
            flow=flow.name,
            owner=owner,
            status=event_pb2.EXECUTION_STATUS_PENDING,
            status_reason="",
            inputs=inputs,
            create_ns=time.time_ns(),
            node_id=self.config.node_id,
            trace_id=run.trace_id,
            parent_execution_id=parent.execution_id if parent else "",
        )
        inputs_event = event_pb2.Event(execution_id=execution_id, seq=2, attempt=1)
        inputs_event.time_unix_nano = time.time_ns()
        inputs_event.inputs_received.inputs.SetInParent()  # set even when there are none
        dict_to_struct(inputs, inputs_event.inputs_received.inputs)
        run.stamp(inputs_event)
        first = [
            _status_event(
                execution_id, 1, 1, event_pb2.EXECUTION_STATUS_PENDING, trace_ids=run.ids
            ),
            inputs_event.SerializeToString(),
        ]
        if parent is not None:
            # The link to the parent, in the child's stream (the engine starts at seq 4).
            link = event_pb2.Event(execution_id=execution_id, seq=3, attempt=1)
            link.time_unix_nano = time.time_ns()
            link.child_execution.relation = event_pb2.CHILD_RELATION_PARENT
            link.child_execution.execution_id = parent.execution_id
            link.child_execution.flow = parent.flow
            link.child_execution.node_id = parent.node_id
            run.stamp(link)
            first.append(link.SerializeToString())
        await self.store.create_execution(record, first)
        record = replace(record, last_seq=len(first))
        live = LiveExecution(
            record, flow, stored_seq=len(first), status=record.status, traceparent=run.traceparent
        )
        self._live[execution_id] = live
        self.hub.publish(execution_id, Batch(1, first))
        self.observer.launched(record)
        self._spawn(self._dispatch(live))
        return record

    async def _launch_on_peer(
        self,
        peers: PeerExecutions,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        owner: str = "",
        parent: ExecutionRecord | None = None,
    ) -> ExecutionRecord:
        """Launch on a peer (which validates the inputs), then relay it as a local execution
        under the peer's execution id; its events arrive with the peer's `seq` numbers.

        A child (`parent`) is linked here (`parent_execution_id`); its relayed stream is the
        peer's and carries no `ChildExecution` event (the peer does not know the parent)."""
        remote = await peers.launch(flow_name, inputs)
        # The peer call carried the trace context: the run continues this trace there.
        run = launch_trace(remote.execution_id, flow_name, principal.id)
        bind_run(remote.execution_id, run.trace_id)
        record = ExecutionRecord(
            execution_id=remote.execution_id,
            flow=flow_name,
            owner=owner or principal.id,
            status=event_pb2.EXECUTION_STATUS_PENDING,
            status_reason="",
            inputs=inputs,
            create_ns=time.time_ns(),
            executor=peer_executor(remote.node_id),
            node_id=self.config.node_id,
            trace_id=run.trace_id,
            parent_execution_id=parent.execution_id if parent else "",
        )
        await self.store.create_execution(record, [])
        flow = FlowEntry(name=flow_name, entrypoint="")
        live = LiveExecution(
            record,
            flow,
            stored_seq=0,
            status=record.status,
            peer=remote.node_id,
            traceparent=run.traceparent,
        )
        self._live[record.execution_id] = live
        self.observer.launched(record)
        self._spawn(self._relay(live))
        return record

    async def _relay(self, live: LiveExecution) -> None:
        assert self.peers is not None
        execution_id = live.record.execution_id
        bind_run(execution_id, live.record.trace_id)
        # Resumed after a restart: this node's own events in the stream shift the peer's.
        position = await self._relay_position(live) if live.stored_seq else None

        async def notice(status: int, reason: str) -> None:
            if not live.done.is_set():
                await self._append_by_node(live, status, reason)

        problem = await relay(
            self.peers,
            live.peer,
            execution_id,
            stored_seq=lambda: live.stored_seq,
            status=lambda: live.status,
            ended=live.done.is_set,
            store=lambda events: self._store_relayed(live, events),
            notice=notice,
            settings=self.relay_settings,
            position=position,
        )
        if problem:
            log.warning("relayed execution %s: %s", execution_id, problem)
            if live.cancel_requested:
                await self._end_by_node(live, event_pb2.EXECUTION_STATUS_CANCELLED, problem)
            else:
                await self._end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, problem)

    async def _relay_position(self, live: LiveExecution) -> RelayPosition:
        stored: list[bytes] = []
        after = 0
        while rows := await self.store.read_events(live.record.execution_id, after, READ_BATCH):
            stored += [data for _, data in rows]
            after = rows[-1][0]
        return relay_position(stored)

    async def _store_relayed(self, live: LiveExecution, events: list[bytes]) -> None:
        execution_id = live.record.execution_id
        changes = status_changes(events)
        await self._store_and_publish(None, {execution_id: events}, {execution_id: changes})
        attempt = event_pb2.Event.FromString(events[-1]).attempt
        if attempt > live.attempt:  # the peer started another attempt
            live.record = replace(live.record, attempt=attempt)
            await self.store.set_attempt(execution_id, attempt)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, live: LiveExecution) -> None:
        execution_id = live.record.execution_id
        bind_run(execution_id, live.record.trace_id)
        try:
            executor = await self.pool.acquire(live.flow.isolation)
        except Exception as e:
            log.exception("no executor for %s", execution_id)
            await self._end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, f"no executor: {e}")
            return
        executor.executions.add(execution_id)
        live.executor = executor
        await self.store.set_executor(execution_id, executor.name)
        self._ensure_drain(executor)
        if live.cancel_requested:
            await self._end_by_node(live, event_pb2.EXECUTION_STATUS_CANCELLED, live.cancel_reason)
            return
        spec = {
            "execution_id": execution_id,
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
        try:
            await executor.start(spec)
        except ExecutorGone:
            return  # the drain loop sees the dead executor and ends the execution
        except Exception as e:
            log.exception("starting %s failed", execution_id)
            executor.executions.discard(execution_id)
            await self._end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, f"start failed: {e}")

    # -- drain --------------------------------------------------------------------------------

    def _ensure_drain(self, executor: ExecutorHandle) -> None:
        if executor.name not in self._drains:
            # A fresh context: the loop serves every execution of the executor, not the one
            # whose dispatch started it (its log lines and spans must not name that one).
            task = asyncio.get_running_loop().create_task(
                self._drain_loop(executor), context=contextvars.Context()
            )
            self._drains[executor.name] = task

    async def _drain_loop(self, executor: ExecutorHandle) -> None:
        batch_size = self.config.pool.drain_batch
        finished = self._finished_acks.setdefault(executor.name, {})
        try:
            while not executor.dead:
                acks = {
                    eid: self._live[eid].stored_seq
                    for eid in executor.executions
                    if eid in self._live
                }
                acks.update(finished)
                sent_finished = dict(finished)
                try:
                    events, statuses = await executor.drain(acks, batch_size, 1.0)
                except ExecutorGone as e:
                    if not executor.dead:
                        await self._executor_died(executor, e)
                    return
                for eid in sent_finished:
                    finished.pop(eid, None)
                crashpoints.reach("after_drain")
                if events:
                    await self._store_and_publish(executor, events, statuses)
                if not executor.executions and executor.isolation == PROCESS and not finished:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("drain loop of %s failed", executor.name)
            await self._executor_died(executor, RuntimeError("drain loop failed"))
        finally:
            self._drains.pop(executor.name, None)

    async def _store_and_publish(
        self,
        executor: ExecutorHandle | None,
        events: dict[str, list[bytes]],
        statuses: dict[str, list[tuple[int, int, str]]],
    ) -> None:
        batches: dict[str, tuple[int, list[bytes]]] = {}
        changes: dict[str, list[StatusChange]] = {}
        for eid, drained in events.items():
            live = self._live.get(eid)
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
            batches[eid] = (first, datas)
            last = first + len(datas) - 1
            changes[eid] = [
                StatusChange(*s) for s in statuses.get(eid, ()) if first <= s[0] <= last
            ]
        if not batches:
            return
        await self.store.append(batches, changes)
        crashpoints.reach("after_store")
        for eid, (first, datas) in batches.items():
            live = self._live[eid]
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
            if terminal_seq:
                self._finish(live, executor)
            elif retrying and not live.peer:  # a relayed execution's peer runs its retries
                self._end_attempt(live, executor)
                self._spawn(self._retry(live))
        crashpoints.reach("after_publish")

    def _end_attempt(self, live: LiveExecution, executor: ExecutorHandle | None) -> None:
        """An attempt ended (RETRYING): its executor lets go of it, the execution stays live."""
        execution_id = live.record.execution_id
        live.executor = None
        if executor is not None:
            self._finished_acks.setdefault(executor.name, {})[execution_id] = live.stored_seq
            self.pool.release(executor, execution_id)

    async def _retry(self, live: LiveExecution) -> None:
        """Start the next attempt after the flow's backoff (a cancel ends the wait)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.cancelled.wait(), live.flow.retry_backoff_seconds)
        if live.cancel_requested:
            await self._end_by_node(live, event_pb2.EXECUTION_STATUS_CANCELLED, live.cancel_reason)
            return
        live.record = replace(live.record, attempt=live.attempt + 1)
        await self.store.set_attempt(live.record.execution_id, live.attempt)
        await self._dispatch(live)

    def _finish(self, live: LiveExecution, executor: ExecutorHandle | None) -> None:
        execution_id = live.record.execution_id
        self._live.pop(execution_id, None)
        live.done.set()
        if executor is not None:
            self._finished_acks.setdefault(executor.name, {})[execution_id] = live.stored_seq
            self.pool.release(executor, execution_id)

    async def _executor_died(self, executor: ExecutorHandle, error: BaseException) -> None:
        self.pool.forget(executor)
        self._finished_acks.pop(executor.name, None)
        if isinstance(error, ExecutorGone):
            died = str(error)  # one line, made for users by the executor port
        else:
            cause = str(error).strip().splitlines()[0] if str(error).strip() else ""
            died = f"executor {executor.name} died: {cause[:300] or type(error).__name__}"
        for eid in list(executor.executions):
            live = self._live.get(eid)
            if live is None:
                continue
            reason = died
            if live.cancel_requested:
                await self._end_by_node(
                    live, event_pb2.EXECUTION_STATUS_CANCELLED, live.cancel_reason
                )
            elif live.attempts_left:
                reason = f"attempt {live.attempt} of {live.flow.retry_attempts} failed: {reason}"
                await self._append_by_node(live, event_pb2.EXECUTION_STATUS_RETRYING, reason)
                live.executor = None
                self._spawn(self._retry(live))
            else:
                await self._end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, reason)
        executor.executions.clear()

    async def _append_by_node(self, live: LiveExecution, status: int, reason: str) -> int:
        """Write a status event for an execution no executor writes for right now."""
        execution_id = live.record.execution_id
        seq = live.stored_seq + 1
        data = _status_event(
            execution_id, seq, live.attempt, status, reason, trace_of(live.traceparent).ids
        )
        await self.store.append(
            {execution_id: (seq, [data])}, {execution_id: [StatusChange(seq, status, reason)]}
        )
        live.stored_seq, live.status = seq, status
        self.hub.publish(execution_id, Batch(seq, [data], seq if status in TERMINAL else 0))
        self.observer.stored(live.record, 1, [StatusChange(seq, status, reason)])
        return seq

    async def _end_by_node(self, live: LiveExecution, status: int, reason: str) -> None:
        """Write the terminal status for an execution no executor writes for any more."""
        if live.record.execution_id not in self._live:
            return
        await self._append_by_node(live, status, reason)
        executor = live.executor
        self._finish(live, None)
        if executor is not None:
            executor.executions.discard(live.record.execution_id)
            if executor.isolation == PROCESS and not executor.dead:
                self.pool.release(executor, live.record.execution_id)

    # -- watch --------------------------------------------------------------------------------

    async def watch(
        self, principal: Principal, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]:
        """Stored events after `after_seq`, then live ones, until the terminal status event."""
        await self._visible(principal, execution_id)
        sub = self.hub.subscribe(execution_id)
        try:
            # uint64 on the wire, int64 in SQLite: beyond that there is nothing anyway.
            cursor = min(after_seq, SQLITE_MAX_INT)
            live_mode = False
            while True:
                if not live_mode:
                    rows = await self.store.read_events(execution_id, cursor, READ_BATCH)
                    if rows:
                        yield [data for _, data in rows]
                        cursor = rows[-1][0]
                        continue
                    record = await self.store.get_execution(execution_id)
                    if record is None or (record.terminal and cursor >= record.last_seq):
                        return
                    live_mode = True
                batch = await sub.next()
                if batch is None or batch.first_seq > cursor + 1:
                    live_mode = False  # lagging or a gap: catch up from the store
                    continue
                if batch.last_seq <= cursor:
                    # Already read from the store; it may still be the end of the stream.
                    if batch.terminal_seq and cursor >= batch.terminal_seq:
                        return
                    continue
                yield batch.events[cursor + 1 - batch.first_seq :]
                cursor = batch.last_seq
                if batch.terminal_seq and cursor >= batch.terminal_seq:
                    return
        finally:
            sub.close()

    # -- cancel and input ---------------------------------------------------------------------

    async def cancel(self, principal: Principal, execution_id: str, reason: str) -> ExecutionRecord:
        record = await self._visible(principal, execution_id)
        live = self._live.get(execution_id)
        if record.terminal or live is None:
            raise FailedPrecondition(
                f"execution {execution_id} already ended "
                f"({event_pb2.ExecutionStatus.Name(record.status)})",  # type: ignore[arg-type]
                reason="EXECUTION_FINISHED",
            )
        if live.cancel_requested:
            return record
        if live.peer:
            return await self._cancel_on_peer(
                live, record, reason or f"cancelled by {principal.id}"
            )
        live.cancel_requested = True
        live.cancel_reason = reason or f"cancelled by {principal.id}"
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
            self._spawn(self._kill_if_stuck(live, executor))
        return record

    async def _cancel_on_peer(
        self, live: LiveExecution, record: ExecutionRecord, reason: str
    ) -> ExecutionRecord:
        """The peer cancels; its CANCELLED arrives through the relay like any other event."""
        assert self.peers is not None
        try:
            await self.peers.cancel(live.peer, live.record.execution_id, reason)
        except KodosumiError as e:
            if e.reason != "EXECUTION_FINISHED":
                raise
        live.cancel_requested, live.cancel_reason = True, reason
        return record

    async def _kill_if_stuck(self, live: LiveExecution, executor: ExecutorHandle) -> None:
        """Hard stop for a flow in a process of its own that ignores cancellation."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                live.done.wait(), self.config.cancel_grace_seconds + KILL_MARGIN_SECONDS
            )
            return
        log.warning("killing executor %s: execution did not stop", executor.name)
        self.pool.kill(executor)

    async def provide_input(
        self, principal: Principal, execution_id: str, request_id: str, value: Any
    ) -> None:
        if not request_id:
            raise InvalidArgument.field("request_id", "required")
        record = await self._visible(principal, execution_id)
        live = self._live.get(execution_id)
        if record.terminal or live is None:
            raise FailedPrecondition(
                f"execution {execution_id} already ended", reason="EXECUTION_FINISHED"
            )
        if live.peer and self.peers is not None:
            await self.peers.provide_input(live.peer, execution_id, request_id, value)
            return
        if live.executor is None:
            raise FailedPrecondition(
                f"execution {execution_id} awaits no input", reason="NO_INPUT_AWAITED"
            )
        try:
            await live.executor.provide_input(execution_id, request_id, value, principal.id)
        except ExecutorGone:
            raise Unavailable(f"the executor of {execution_id} is gone") from None

    # -- retention ----------------------------------------------------------------------------

    async def delete(self, principal: Principal, execution_id: str) -> None:
        record = await self._visible(principal, execution_id)
        if not record.terminal or execution_id in self._live:
            raise FailedPrecondition(
                f"execution {execution_id} has not ended; cancel it first",
                reason="EXECUTION_RUNNING",
            )
        await self.store.delete_executions([execution_id])

    async def expire(self, older_than_seconds: float) -> int:
        """Delete finished executions that ended more than `older_than_seconds` ago."""
        cutoff = time.time_ns() - int(older_than_seconds * 1e9)
        deleted = 0
        while expired := await self.store.ended_before(cutoff):
            await self.store.delete_executions(expired)
            deleted += len(expired)
        return deleted

    async def keep_for(self, retention_seconds: float) -> None:
        """Background task: expire old executions every tenth of the retention (at most 60 s)."""
        pause = min(max(retention_seconds / 10, 1.0), 60.0)
        while True:
            try:
                if deleted := await self.expire(retention_seconds):
                    log.info("retention: deleted %d finished executions", deleted)
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(pause)

    # -- lifecycle ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: re-attach to executions whose executor survived, close the rest."""
        # Executors that outlived the node (external cluster) and still host executions.
        survivors = {e.name: e for e in await self.pool.survivors()}
        for record in await self.store.unfinished():
            flow = self._flow_or_placeholder(record)
            live = LiveExecution(record, flow, stored_seq=record.last_seq, status=record.status)
            live.traceparent = resumed_trace(record.trace_id).traceparent
            self._live[record.execution_id] = live
            live.peer = peer_of(record.executor)
            if live.peer and self.peers is not None:
                self._spawn(self._relay(live))  # the peer may still run it: resume the relay
                continue
            executor = survivors.get(record.executor)
            if executor is not None and record.execution_id in executor.executions:
                live.executor = executor
                continue
            accepted_seq = 3 if record.parent_execution_id else 2  # the node's launch events
            if (
                record.status == event_pb2.EXECUTION_STATUS_PENDING
                and record.last_seq == accepted_seq
            ):
                # Accepted but no engine event stored: it never visibly started, so it
                # starts now instead of failing.
                self._spawn(self._dispatch(live))
                continue
            reason = (
                "the node restarted and the embedded Ray stopped with it"
                if self.config.ray.embedded
                else "the node restarted and the execution's executor is gone"
            )
            await self._end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, reason)
        for executor in survivors.values():
            executor.executions.intersection_update(self._live)
            if executor.executions:
                self._ensure_drain(executor)
            else:
                self.pool.release(executor, "")  # nothing left to resume: it retires

    def _flow_or_placeholder(self, record: ExecutionRecord) -> FlowEntry:
        try:
            return self.catalog.get(record.flow)
        except KodosumiError:
            return FlowEntry(name=record.flow, entrypoint="")

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop launching, let running executions finish within the grace period, cancel the
        rest, and record an explicit terminal status for anything still open."""
        self._closing = True
        await self._wait_all(grace_seconds)
        for live in list(self._live.values()):
            with contextlib.suppress(KodosumiError):
                await self.cancel(_NODE, live.record.execution_id, "the node is shutting down")
        await self._wait_all(self.config.cancel_grace_seconds + 1.0)
        for task in list(self._drains.values()):
            task.cancel()
        await asyncio.gather(*self._drains.values(), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        for live in list(self._live.values()):
            await self._end_by_node(
                live, event_pb2.EXECUTION_STATUS_CANCELLED, "the node shut down before it ended"
            )

    async def _wait_all(self, seconds: float) -> None:
        waits = [live.done.wait() for live in self._live.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), seconds)


_NODE = Principal(None, frozenset({"admin"}))
