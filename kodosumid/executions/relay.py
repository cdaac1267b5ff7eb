"""Executions that run on a peer node, relayed into this node's store.

When a client launches a flow this node does not offer, the launch is forwarded to a peer
that does (`PeerExecutions.launch`), and this node keeps a local execution of the same id.
A relay plays the part an executor's drain loop plays for local executions: it watches the
peer's stream from the last `seq` stored here, hands each batch to the drainer, which stores
it and only then publishes it, and after a break watches again from the new last `seq`. The
peer's `seq` numbers are kept, so watchers of this node get the same ordered, gapless,
exactly-once stream, resumable here.

A peer that cannot be reached is told to the execution's watchers at once: when the stream
breaks and the peer does not answer a direct check either, the relay has the node write a
`PEER_LOST` status event (the reason names the peer and how long it waits). A peer that
answers again gets the status before written back, and relaying goes on; a peer unreachable
for longer than the grace period (dead, partitioned, its trust revoked) ends the relay with
a reason, and the node records a terminal `FAILED` with it.

Those status events are this node's own, so from the first of them on the stream here is the
peer's shifted by an offset (local `seq` = peer `seq` + offset). The relay renumbers the
peer's events by it and resumes the peer's stream at local `seq` - offset. After a restart
`relay_position` finds the offset again in the stored stream: every `PEER_LOST` and the event
right after it (the status written back, or the terminal status) are the node's.

`Relayer` is the node's side of it: launch on a peer, follow its stream into the store,
cancel and answer there. No gRPC here: peers sit behind `PeerExecutions`, whose failures
are catalog errors.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf.message import DecodeError

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
from kodosumid.network.backoff import Backoff, TimeSource, is_transient
from kodosumid.observability.run_trace import launch_trace

if TYPE_CHECKING:
    from kodosumid.executions.drain import Drainer

log = logging.getLogger(__name__)

# Events read per store query when a resumed relay finds its position.
READ_BATCH = 2000

# The `executor` column of a relayed execution: `peer:<node id>` (re-attached after a restart).
PEER_EXECUTOR_PREFIX = "peer:"


def peer_executor(node_id: str) -> str:
    return PEER_EXECUTOR_PREFIX + node_id


def peer_of(executor: str) -> str:
    """The peer a stored executor name points at, or '' for a local executor."""
    prefix = PEER_EXECUTOR_PREFIX
    return executor.removeprefix(prefix) if executor.startswith(prefix) else ""


@dataclass(frozen=True, slots=True)
class RemoteLaunch:
    node_id: str
    execution_id: str


class PeerExecutions(Protocol):
    """Executions on peers, called as this node."""

    async def launch(
        self,
        flow: str,
        inputs: dict[str, Any],
        files: dict[str, str] | None = None,
        before: Callable[[str], Awaitable[None]] | None = None,
    ) -> RemoteLaunch:
        """`files` (name -> file id here) are pulled by the peer `before(its node id)` let."""
        ...

    def watch(
        self, node_id: str, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]: ...

    async def cancel(self, node_id: str, execution_id: str, reason: str) -> None: ...

    async def provide_input(
        self, node_id: str, execution_id: str, request_id: str, value: Any
    ) -> None: ...

    async def reachable(self, node_id: str) -> bool:
        """Whether the peer answers a health check now (within the check's deadline)."""
        ...


def status_changes(events: list[bytes]) -> list[tuple[int, int, str]]:
    """(seq, status, reason) of the status events among serialized events."""
    changes = []
    for data in events:
        event = event_pb2.Event.FromString(data)
        if event.HasField("status_changed"):
            changed = event.status_changed
            changes.append((event.seq, int(changed.status), changed.reason))
    return changes


LOST = event_pb2.EXECUTION_STATUS_PEER_LOST


@dataclass(frozen=True, slots=True)
class RelaySettings:
    grace_seconds: float = 30.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.2, maximum=2.0))


@dataclass(frozen=True, slots=True)
class RelayPosition:
    """Where a relay stands in an execution's stored stream."""

    # Events this node wrote into the stream (local seq = the peer's seq + offset).
    offset: int = 0
    # The last thing written is a PEER_LOST; `status_before` is the status it replaced.
    lost: bool = False
    status_before: int = event_pb2.EXECUTION_STATUS_PENDING


class PositionFold:
    """`relay_position` a page at a time: a resumed relay reads its stored stream in pages,
    never the whole of it at once."""

    def __init__(self) -> None:
        self.offset, self.lost = 0, False
        self.status, self.before = int(event_pb2.EXECUTION_STATUS_PENDING), 0

    def feed(self, events: Iterable[bytes]) -> None:
        for data in events:
            event = event_pb2.Event.FromString(data)
            if self.lost:  # the event right after a PEER_LOST is this node's as well
                self.offset, self.lost = self.offset + 1, False
            if not event.HasField("status_changed"):
                continue
            if event.status_changed.status == LOST:
                self.offset, self.lost, self.before = self.offset + 1, True, self.status
            else:
                self.status = int(event.status_changed.status)

    def position(self) -> RelayPosition:
        return RelayPosition(self.offset, self.lost, self.before if self.lost else self.status)


def relay_position(events: Iterable[bytes]) -> RelayPosition:
    """The position after the stored stream `events` (all of it, in order)."""
    fold = PositionFold()
    fold.feed(events)
    return fold.position()


def misbehaviour(events: list[bytes], first_seq: int) -> str:
    """What is wrong with a batch a peer sent when its events must be `first_seq`, … ('' when
    nothing): a hostile or broken peer does not get bytes that are no event, or a stream with
    gaps or repeats, into this node's store."""
    for i, data in enumerate(events):
        due = first_seq + i
        try:
            seq = event_pb2.Event.FromString(data).seq
        except DecodeError:
            return f"sent {len(data)} bytes that are no event where seq {due} was due"
        if seq != due:
            return f"sent seq {seq} where seq {due} was due"
    return ""


def renumbered(events: list[bytes], offset: int) -> list[bytes]:
    """The peer's events with this node's `seq` numbers (unchanged bytes when offset is 0)."""
    if not offset:
        return events
    out = []
    for data in events:
        event = event_pb2.Event.FromString(data)
        event.seq += offset
        out.append(event.SerializeToString())
    return out


Notice = Callable[[int, str], Awaitable[None]]


async def relay(
    peers: PeerExecutions,
    node_id: str,
    execution_id: str,
    *,
    stored_seq: Callable[[], int],
    status: Callable[[], int],
    ended: Callable[[], bool],
    store: Callable[[list[bytes]], Awaitable[None]],
    notice: Notice,
    settings: RelaySettings,
    position: RelayPosition | None = None,
    time: TimeSource | None = None,
) -> str:
    """Relay until the execution ended here; returns '' then, else why it cannot go on.

    `notice(status, reason)` writes one status event of this node's own into the stream
    (PEER_LOST, and the status before when the peer answers again); `status()` is the
    execution's status here now."""
    time = time or TimeSource()
    at = position or RelayPosition()
    offset, lost, before = at.offset, at.lost, at.status_before
    attempt = 0
    unreachable_since: float | None = time.clock() if lost else None
    problem = "not reached yet"
    while not ended():
        if lost and await peers.reachable(node_id):
            if ended():
                return ""
            down = time.clock() - (unreachable_since or time.clock())
            await notice(before, f"peer node {node_id} answers again after {down:.1f} s")
            offset, lost = offset + 1, False
        if not lost:
            try:
                async for events in peers.watch(node_id, execution_id, stored_seq() - offset):
                    if events:
                        if wrong := misbehaviour(events, stored_seq() - offset + 1):
                            return f"peer node {node_id} {wrong}; relay ended"
                        await store(renumbered(events, offset))
                    unreachable_since, attempt = None, 0
                    if ended():
                        return ""
                problem = "the stream ended before the execution did"
            except KodosumiError as e:
                if not is_transient(e):
                    if e.reason == "PEER_MESSAGE_TOO_LARGE":
                        return e.message  # it names the peer and the limit
                    return f"peer {node_id} cannot relay the execution: {e.message}"
                problem = e.message
            if ended():
                return ""
        now = time.clock()
        if unreachable_since is None:
            unreachable_since = now
            log.info("relay of %s from %s broke (%s); resuming", execution_id, node_id, problem)
        elif now - unreachable_since >= settings.grace_seconds:
            return (
                f"peer node {node_id} unreachable for {now - unreachable_since:.0f} s "
                f"while running the execution: {problem}"
            )
        if not lost and not await peers.reachable(node_id):
            # Not a dropped stream only: the peer itself does not answer. Say so now.
            if ended():
                return ""
            before = status()
            await notice(
                LOST,
                f"peer node {node_id} is unreachable ({problem}); waiting up to "
                f"{settings.grace_seconds:.0f} s for it",
            )
            offset, lost = offset + 1, True
        await time.sleep(settings.backoff.delay(attempt, time.random))
        attempt += 1
    return ""


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
    ) -> ExecutionRecord:
        """`files`: the peer pulls them from here once `grant(its node id)` let it.

        Launch on a peer (which validates the inputs), then relay it as a local execution
        under the peer's execution id; its events arrive with the peer's `seq` numbers.

        A child (`parent`) is linked here (`parent_execution_id`); its relayed stream is the
        peer's and carries no `ChildExecution` event (the peer does not know the parent)."""
        remote = await self.peers.launch(
            flow_name, inputs, {f.name: f.file_id for f in files}, grant
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
