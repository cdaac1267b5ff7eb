"""Executions that run on a peer node, relayed into this node's store.

When a client launches a flow this node does not offer, the launch is forwarded to a peer
that does (`PeerExecutions.launch`), and this node keeps a local execution of the same id.
A relay plays the part an executor's drain loop plays for local executions: it watches the
peer's stream from the last `seq` stored here, hands each batch to the manager, which stores
it and only then publishes it, and after a break watches again from the new last `seq`. The
peer's `seq` numbers are kept, so watchers of this node get the same ordered, gapless,
exactly-once stream, resumable here.

A peer that cannot be reached is told to the execution's watchers at once: when the stream
breaks and the peer does not answer a direct check either, the relay has the manager write a
`PEER_LOST` status event (the reason names the peer and how long it waits). A peer that
answers again gets the status before written back, and relaying goes on; a peer unreachable
for longer than the grace period (dead, partitioned, its trust revoked) ends the relay with
a reason, and the manager records a terminal `FAILED` with it.

Those status events are this node's own, so from the first of them on the stream here is the
peer's shifted by an offset (local `seq` = peer `seq` + offset). The relay renumbers the
peer's events by it and resumes the peer's stream at local `seq` - offset. After a restart
`relay_position` finds the offset again in the stored stream: every `PEER_LOST` and the event
right after it (the status written back, or the terminal status) are the node's.

No gRPC here: peers sit behind `PeerExecutions`, whose failures are catalog errors.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kodosumi.errors import KodosumiError
from kodosumi.v1 import event_pb2
from kodosumid.network.backoff import Backoff, TimeSource, is_transient

log = logging.getLogger(__name__)

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

    async def launch(self, flow: str, inputs: dict[str, Any]) -> RemoteLaunch: ...

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


def relay_position(events: Iterable[bytes]) -> RelayPosition:
    """The position after the stored stream `events` (all of it, in order)."""
    offset, lost, status, before = 0, False, int(event_pb2.EXECUTION_STATUS_PENDING), 0
    for data in events:
        event = event_pb2.Event.FromString(data)
        if lost:  # the event right after a PEER_LOST is this node's as well
            offset, lost = offset + 1, False
        if not event.HasField("status_changed"):
            continue
        if event.status_changed.status == LOST:
            offset, lost, before = offset + 1, True, status
        else:
            status = int(event.status_changed.status)
    return RelayPosition(offset, lost, before if lost else status)


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
                        await store(renumbered(events, offset))
                    unreachable_since, attempt = None, 0
                    if ended():
                        return ""
                problem = "the stream ended before the execution did"
            except KodosumiError as e:
                if not is_transient(e):
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
