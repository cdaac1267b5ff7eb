"""The registry feed and the execution relay against scripted remote sides, on fake time:
resume after breaks from the last revision / stored seq, list again when the registry
cannot resume, fail with a reason once a peer stays away — without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from kodosumi.errors import FailedPrecondition, NotFound, Unavailable
from kodosumi.v1 import event_pb2, flow_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.convert import watch_responses
from kodosumid.event_store import TERMINAL
from kodosumid.executions.relay import (
    RelayPosition,
    RelaySettings,
    RemoteLaunch,
    relay,
    relay_position,
    status_changes,
)
from kodosumid.network.backoff import Backoff
from kodosumid.network.peer_client import event_frames
from kodosumid.network.peers import PeerTable
from kodosumid.network.registry_feed import RegistryFeed
from tests.peers.fakes import FakeTime, Script, until

# -- the registry feed ---------------------------------------------------------------------------


def node(node_id: str, *flows: str) -> rpb.RegisteredNode:
    return rpb.RegisteredNode(
        node_id=node_id,
        endpoints=[f"{node_id}:1"],
        flows=[flow_pb2.Flow(name=f, node_id=node_id) for f in flows],
        state=rpb.REGISTERED_NODE_STATE_ONLINE,
    )


def change(revision: int, kind: int, node_id: str, flow: str = "") -> rpb.RegistryChange:
    message = rpb.RegistryChange(revision=revision, kind=kind, node_id=node_id)  # type: ignore[arg-type]
    if flow:
        message.flow.CopyFrom(flow_pb2.Flow(name=flow, node_id=node_id))
    else:
        message.node.CopyFrom(node(node_id))
    return message


class ScriptedReader:
    """`list_nodes` answers from `lists`; each `watch` call plays the next entry of `watches`:
    a list of batches, then an error (or the end)."""

    def __init__(self, lists: list[Any], watches: list[list[Any]]) -> None:
        self.lists = Script(lists)
        self.watches = watches
        self.watched_from: list[int] = []

    async def list_nodes(self) -> tuple[list[rpb.RegisteredNode], int]:
        result: tuple[list[rpb.RegisteredNode], int] = await self.lists.answer("list")
        return result

    async def watch(self, after: int) -> AsyncIterator[tuple[list[rpb.RegistryChange], int]]:
        self.watched_from.append(after)
        if not self.watches:
            await asyncio.Event().wait()
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item, item[-1].revision


async def test_feed_lists_then_watches_and_resumes_from_the_last_revision() -> None:
    time = FakeTime()
    table = PeerTable("self")
    online, added = rpb.REGISTRY_CHANGE_KIND_NODE_ONLINE, rpb.REGISTRY_CHANGE_KIND_FLOW_ADDED
    compacted = FailedPrecondition("too old", reason="REVISION_COMPACTED")
    reader = ScriptedReader(
        lists=[([node("b", "search")], 5), ([node("b", "search"), node("d")], 20)],
        watches=[
            [[change(6, online, "c")], [change(7, added, "c", "write")], Unavailable("gone")],
            [[change(8, rpb.REGISTRY_CHANGE_KIND_FLOW_REMOVED, "b", "search")], compacted],
        ],
    )
    feed = RegistryFeed(reader, table, Backoff(0.5, 4.0), time.source())
    task = asyncio.create_task(feed.run())
    await until(lambda: len(reader.watched_from) == 3)
    task.cancel()
    # Listed at 5; watched from 5; resumed from 7 after the break; listed again after the
    # compaction and watched from the new list's revision.
    assert reader.watched_from == [5, 7, 20]
    assert reader.lists.names == ["list", "list"]
    assert time.sleeps == [0.375]  # one pause after the break, none before listing again
    assert {p.node_id for p in table.entries()} == {"b", "d"}  # "c" is gone after the re-list
    assert set(table.get("b").flows) == {"search"}  # type: ignore[union-attr]


# -- the relay -----------------------------------------------------------------------------------


def events(execution_id: str, count: int) -> list[bytes]:
    """A finished stream: PENDING, RUNNING, `count - 3` progress events, SUCCEEDED."""
    out = []
    for seq in range(1, count + 1):
        event = event_pb2.Event(execution_id=execution_id, seq=seq)
        if seq == 1:
            event.status_changed.status = event_pb2.EXECUTION_STATUS_PENDING
        elif seq == 2:
            event.status_changed.status = event_pb2.EXECUTION_STATUS_RUNNING
        elif seq == count:
            event.status_changed.status = event_pb2.EXECUTION_STATUS_SUCCEEDED
        else:
            event.progress.message = str(seq)
        out.append(event.SerializeToString())
    return out


class FlakyPeer:
    """Serves a stored stream in batches of 3; each watch breaks after `breaks[i]` batches."""

    def __init__(
        self,
        stream: list[bytes],
        breaks: Sequence[int | None],
        error: Exception,
        answers: Sequence[bool] = (),
    ) -> None:
        self.stream = stream
        self.breaks = list(breaks)
        self.error = error
        self.watched_from: list[int] = []
        # What health checks answer in turn (then: True, a dropped stream only).
        self.answers = list(answers)
        self.checks = 0

    async def reachable(self, node_id: str) -> bool:
        self.checks += 1
        return self.answers.pop(0) if self.answers else True

    async def launch(
        self, flow: str, inputs: dict[str, Any], files: Any = None, before: Any = None
    ) -> RemoteLaunch:
        raise NotImplementedError

    async def watch(
        self, node_id: str, execution_id: str, after: int
    ) -> AsyncIterator[list[bytes]]:
        self.watched_from.append(after)
        limit = self.breaks.pop(0) if self.breaks else None
        rest = self.stream[after:]
        batches = [rest[i : i + 3] for i in range(0, len(rest), 3)]
        for n, batch in enumerate(batches):
            if limit is not None and n >= limit:
                raise self.error
            yield batch
        if limit is not None and limit >= len(batches):
            raise self.error

    async def cancel(self, node_id: str, execution_id: str, reason: str) -> None: ...

    async def provide_input(self, *args: Any) -> None: ...


class Sink:
    """The manager's part: stores batches, writes the node's own status events."""

    def __init__(self, stored: list[bytes] | None = None) -> None:
        self.stored: list[bytes] = list(stored or [])
        self.done = False
        self.status = int(event_pb2.EXECUTION_STATUS_PENDING)
        self.notices: list[tuple[int, str]] = []

    async def store(self, batch: list[bytes]) -> None:
        assert event_pb2.Event.FromString(batch[0]).seq == len(self.stored) + 1  # gapless
        self.stored += batch
        for _, status, _ in status_changes(batch):
            self.status = status
            self.done = self.done or status in TERMINAL

    async def notice(self, status: int, reason: str) -> None:
        event = event_pb2.Event(execution_id="e1", seq=len(self.stored) + 1)
        event.status_changed.status = status  # type: ignore[assignment]
        event.status_changed.reason = reason
        self.stored.append(event.SerializeToString())
        self.status = status
        self.notices.append((status, reason))


async def run_relay(
    peer: FlakyPeer,
    sink: Sink,
    time: FakeTime,
    grace: float = 10.0,
    position: RelayPosition | None = None,
) -> str:
    return await relay(
        peer,
        "node-b",
        "e1",
        stored_seq=lambda: len(sink.stored),
        status=lambda: sink.status,
        ended=lambda: sink.done,
        store=sink.store,
        notice=sink.notice,
        settings=RelaySettings(grace_seconds=grace, backoff=Backoff(0.2, 1.0)),
        position=position,
        time=time.source(),
    )


async def test_relay_resumes_after_breaks_and_stores_every_event_exactly_once() -> None:
    stream = events("e1", 20)
    peer = FlakyPeer(stream, breaks=[2, 0, 3, None], error=Unavailable("cut"))
    sink, time = Sink(), FakeTime()
    assert await run_relay(peer, sink, time) == ""
    assert sink.stored == stream
    assert peer.watched_from == [0, 6, 6, 15]  # always from the last stored seq
    assert len(time.sleeps) == 3


async def test_relay_gives_up_with_a_reason_once_the_peer_stays_unreachable() -> None:
    stream = events("e1", 20)
    peer = FlakyPeer(stream, breaks=[1] + [0] * 100, error=Unavailable("connection refused"))
    sink, time = Sink(), FakeTime(rand=1.0)
    peer.answers = [False] * 100
    reason = await run_relay(peer, sink, time, grace=5.0)
    assert "node-b unreachable for 5 s" in reason and "connection refused" in reason
    # Three events of the peer, then at once (no pause before) the node's PEER_LOST.
    assert len(sink.stored) == 4 and not sink.done
    ((status, why),) = sink.notices
    assert status == event_pb2.EXECUTION_STATUS_PEER_LOST
    assert "node-b is unreachable" in why and "up to 5 s" in why
    assert 5.0 <= time.now <= 6.0  # gave up right after the grace period, not later


async def test_relay_stops_at_once_when_the_peer_does_not_know_the_execution() -> None:
    peer = FlakyPeer([], breaks=[0], error=NotFound("no execution", reason="EXECUTION_NOT_FOUND"))
    sink, time = Sink(), FakeTime()
    reason = await run_relay(peer, sink, time)
    assert "cannot relay" in reason and time.sleeps == []


def seqs_and_statuses(stored: list[bytes]) -> tuple[list[int], list[int]]:
    parsed = [event_pb2.Event.FromString(data) for data in stored]
    return [e.seq for e in parsed], [
        int(e.status_changed.status) for e in parsed if e.HasField("status_changed")
    ]


async def test_a_lost_peer_is_peer_lost_at_once_then_back_to_its_status_when_it_answers() -> None:
    stream = events("e1", 20)
    # Two batches, then the link breaks; two checks go unanswered, the third answers.
    peer = FlakyPeer(stream, [2, None], Unavailable("reset"), answers=[False, False, True])
    sink, time = Sink(), FakeTime()
    assert await run_relay(peer, sink, time) == ""
    seqs, statuses = seqs_and_statuses(sink.stored)
    assert seqs == list(range(1, 23))  # the peer's 20 and the node's two, gapless
    S = event_pb2
    assert statuses == [
        S.EXECUTION_STATUS_PENDING,
        S.EXECUTION_STATUS_RUNNING,
        S.EXECUTION_STATUS_PEER_LOST,
        S.EXECUTION_STATUS_RUNNING,  # the status before, written back by the node
        S.EXECUTION_STATUS_SUCCEEDED,
    ]
    assert sink.notices[1][1].startswith("peer node node-b answers again after")
    assert peer.watched_from == [0, 6]  # the peer's own seq, not the shifted one
    # The peer's events keep their content; only `seq` moved by the node's two events.
    original = event_pb2.Event.FromString(stream[6])
    original.seq = 9
    assert event_pb2.Event.FromString(sink.stored[8]) == original
    # A restarted node finds the offset again in what it stored, and relays on from there.
    position = relay_position(sink.stored[:12])
    assert position == RelayPosition(offset=2, lost=False, status_before=S.EXECUTION_STATUS_RUNNING)
    again = Sink(sink.stored[:12])
    resumed = FlakyPeer(stream, [None], Unavailable("x"))
    assert await run_relay(resumed, again, FakeTime(), position=position) == ""
    assert again.stored == sink.stored and resumed.watched_from == [10]


def test_relay_position_of_a_stream_that_is_lost_now() -> None:
    sink = Sink(events("e1", 4)[:3])
    asyncio.run(sink.notice(event_pb2.EXECUTION_STATUS_PEER_LOST, "gone"))
    position = relay_position(sink.stored)
    assert position == RelayPosition(1, True, event_pb2.EXECUTION_STATUS_RUNNING)


def test_event_frames_split_a_watch_response_into_the_stored_bytes() -> None:
    stream = events("e1", 5)
    (response,) = watch_responses(stream)
    assert event_frames(response.SerializeToString()) == stream
