"""The relay loop and the arithmetic of a relayed stream: `relay` follows one peer's
stream into this node's store, and the pure helpers beside it check, renumber and fold the
events it carries. `Relayer` (relay.py) runs it for each relayed execution.

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
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from kodosumi.errors import KodosumiError
from kodosumi.v1 import event_pb2
from kodosumid.executions.relay_peers import PeerExecutions
from kodosumid.network.backoff import Backoff, TimeSource, is_transient

log = logging.getLogger(__name__)


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
    # Bytes of events one relayed execution may store here (0: no limit).
    max_bytes: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.2, maximum=2.0))


@dataclass(frozen=True, slots=True)
class RelayPosition:
    """Where a relay stands in an execution's stored stream."""

    # Events this node wrote into the stream (local seq = the peer's seq + offset).
    offset: int = 0
    # The last thing written is a PEER_LOST; `status_before` is the status it replaced.
    lost: bool = False
    status_before: int = event_pb2.EXECUTION_STATUS_PENDING
    # Bytes of events stored for the execution so far (counted against `max_bytes`); a
    # tally beside the position, not part of it, so positions compare without it.
    stored_bytes: int = field(default=0, compare=False)


class PositionFold:
    """`relay_position` a page at a time: a resumed relay reads its stored stream in pages,
    never the whole of it at once."""

    def __init__(self) -> None:
        self.offset, self.lost = 0, False
        self.status, self.before = int(event_pb2.EXECUTION_STATUS_PENDING), 0
        self.stored_bytes = 0

    def feed(self, events: Iterable[bytes]) -> None:
        for data in events:
            self.stored_bytes += len(data)
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
        status = self.before if self.lost else self.status
        return RelayPosition(self.offset, self.lost, status, self.stored_bytes)


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
    stored_bytes = at.stored_bytes
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
                        stored_bytes += sum(len(data) for data in events)
                        if settings.max_bytes and stored_bytes > settings.max_bytes:
                            # Checked before storing: the disk never holds more than the cap.
                            return (
                                f"peer node {node_id} sent more than the {settings.max_bytes} "
                                "bytes of events a relayed execution may store here "
                                "(peers.max_execution_bytes); relay ended"
                            )
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
