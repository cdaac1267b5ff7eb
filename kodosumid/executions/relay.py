"""Executions that run on a peer node, relayed into this node's store.

When a client launches a flow this node does not offer, the launch is forwarded to a peer
that does (`PeerExecutions.launch`), and this node keeps a local execution of the same id.
A relay plays the part an executor's drain loop plays for local executions: it watches the
peer's stream from the last `seq` stored here, hands each batch to the drainer, which stores
it and only then publishes it, and after a break watches again from the new last `seq`. The
peer's `seq` numbers are kept, so watchers of this node get the same ordered, gapless,
exactly-once stream, resumable here.

`Relayer` is the node's side of it: launch on a peer, follow its stream into the store,
cancel and answer there. No gRPC here: peers sit behind `PeerExecutions`, whose failures
are catalog errors.

The relay loop and the stream's arithmetic (`PEER_LOST`, the offset of this node's own
status events, resuming after a restart) are in `relay_loop.py`; the peer port and the
`peer:<node id>` executor names in `relay_peers.py`. Both are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kodosumi.authz import Principal
from kodosumi.clock import Clock
from kodosumi.errors import KodosumiError
from kodosumi.logs import bind_run
from kodosumi.v1 import event_pb2
from kodosumid.config import FlowEntry
from kodosumid.event_store import EventStore, ExecutionRecord
from kodosumid.executions.launch_files import InputFileLike
from kodosumid.executions.lifecycle import ExecutionObserver
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.relay_loop import (
    LOST,
    Notice,
    PositionFold,
    RelayPosition,
    RelaySettings,
    misbehaviour,
    relay,
    relay_position,
    renumbered,
    status_changes,
)
from kodosumid.executions.relay_peers import (
    PEER_EXECUTOR_PREFIX,
    PeerExecutions,
    RemoteLaunch,
    peer_executor,
    peer_of,
)
from kodosumid.observability.run_trace import launch_trace

if TYPE_CHECKING:
    from kodosumid.executions.drain import Drainer

__all__ = [
    "LOST",
    "PEER_EXECUTOR_PREFIX",
    "READ_BATCH",
    "Notice",
    "PeerExecutions",
    "PositionFold",
    "RelayPosition",
    "RelaySettings",
    "Relayer",
    "RemoteLaunch",
    "misbehaviour",
    "peer_executor",
    "peer_of",
    "relay",
    "relay_position",
    "renumbered",
    "status_changes",
]

log = logging.getLogger(__name__)

# Events read per store query when a resumed relay finds its position.
READ_BATCH = 2000


class Relayer:
    """The node's side of relayed executions: launch on a peer, relay its events into the
    store (through the drainer's store-then-publish), cancel and answer it there."""

    def __init__(
        self,
        peers: PeerExecutions,
        live: LiveTable,
        drainer: Drainer,
        store: EventStore,
        observer: ExecutionObserver,
        *,
        node_id: str,
        settings: RelaySettings,
        clock: Clock,
    ) -> None:
        self.clock = clock
        self.peers = peers
        self.live = live
        self.drainer = drainer
        self.store = store
        self.observer = observer
        self.node_id = node_id
        self.settings = settings

    async def launch(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        owner: str = "",
        parent: ExecutionRecord | None = None,
        files: Sequence[InputFileLike] = (),
        grant: Callable[[str], Awaitable[None]] | None = None,
        groups: tuple[str, ...] = (),
    ) -> ExecutionRecord:
        """`files`: the peer pulls them from here once `grant(its node id)` let it.
        `groups`: the owner's groups (usage summaries by group).

        Launch on a peer (which validates the inputs), then relay it as a local execution
        under the peer's execution id; its events arrive with the peer's `seq` numbers.

        A child (`parent`) is linked here (`parent_execution_id`); its relayed stream is the
        peer's and carries no `ChildExecution` event (the peer does not know the parent)."""
        remote = await self.peers.launch(
            flow_name,
            inputs,
            {f.name: f.file_id for f in files},
            grant,
            on_behalf_of=owner or principal.id,
        )
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
            create_ns=self.clock.now_ns(),
            executor=peer_executor(remote.node_id),
            node_id=self.node_id,
            trace_id=run.trace_id,
            parent_execution_id=parent.execution_id if parent else "",
        )
        await self.store.create_execution(record, [], groups)
        flow = FlowEntry(name=flow_name, entrypoint="")
        live = LiveExecution(
            record,
            flow,
            stored_seq=0,
            status=record.status,
            peer=remote.node_id,
            traceparent=run.traceparent,
            groups=groups,
        )
        self.live.add(live)
        self.observer.launched(record)
        self.live.spawn(self.follow(live))
        return record

    async def follow(self, live: LiveExecution) -> None:
        """Relay the peer's events until the execution ends; record why if the relay cannot."""
        execution_id = live.execution_id
        bind_run(execution_id, live.record.trace_id)
        # Resumed after a restart: this node's own events in the stream shift the peer's.
        position = await self._position(live) if live.stored_seq else None

        async def notice(status: int, reason: str) -> None:
            if not live.done.is_set():
                await self.drainer.append_by_node(live, status, reason)

        problem = await relay(
            self.peers,
            live.peer,
            execution_id,
            stored_seq=lambda: live.stored_seq,
            status=lambda: live.status,
            ended=live.done.is_set,
            store=lambda events: self._store_relayed(live, events),
            notice=notice,
            settings=self.settings,
            position=position,
        )
        if problem:
            log.warning("relayed execution %s: %s", execution_id, problem)
            status = (
                event_pb2.EXECUTION_STATUS_CANCELLED
                if live.cancel_requested
                else event_pb2.EXECUTION_STATUS_FAILED
            )
            await self.drainer.end_by_node(live, status, problem)

    async def _position(self, live: LiveExecution) -> RelayPosition:
        fold = PositionFold()
        after = 0
        while rows := await self.store.read_events(live.execution_id, after, READ_BATCH):
            fold.feed(data for _, data in rows)
            after = rows[-1][0]
        return fold.position()

    async def _store_relayed(self, live: LiveExecution, events: list[bytes]) -> None:
        execution_id = live.execution_id
        changes = status_changes(events)
        await self.drainer.store_and_publish(None, {execution_id: events}, {execution_id: changes})
        attempt = event_pb2.Event.FromString(events[-1]).attempt
        if attempt > live.attempt:  # the peer started another attempt
            live.record = replace(live.record, attempt=attempt)
            await self.store.set_attempt(execution_id, attempt)

    async def cancel(self, live: LiveExecution, reason: str) -> None:
        """The peer cancels; its CANCELLED arrives through the relay like any other event."""
        try:
            await self.peers.cancel(live.peer, live.execution_id, reason)
        except KodosumiError as e:
            if e.reason != "EXECUTION_FINISHED":
                raise
        live.cancel_requested, live.cancel_reason = True, reason

    async def provide_input(self, live: LiveExecution, request_id: str, value: Any) -> None:
        await self.peers.provide_input(live.peer, live.execution_id, request_id, value)
