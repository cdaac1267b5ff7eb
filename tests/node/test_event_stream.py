"""The event stream guarantees of DESIGN.md, on a real node (gRPC + mTLS, Ray, SQLite)."""

from __future__ import annotations

import asyncio

from kodosumi.v1 import event_pb2
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, launch, statuses

S = event_pb2


async def test_events_are_ordered_and_gapless(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "emit-many", {"count": 3000})
    events = await collect(shared_node.flows, execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(1 for e in events if e.HasField("progress")) == 3000
    assert [e.progress.message for e in events if e.HasField("progress")] == [
        str(i) for i in range(3000)
    ]
    assert all(e.execution_id == execution_id for e in events)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_no_watcher_sees_an_event_before_it_is_stored(shared_node: RunningNode) -> None:
    store = shared_node.app.store
    assert store is not None
    execution_id = await launch(shared_node.flows, "emit-many", {"count": 2000})
    checked = 0
    async for response in shared_node.flows.WatchExecution(
        event_pb2_request(execution_id), timeout=60
    ):
        for event in response.events:
            stored = await store.read_events(execution_id, event.seq - 1, 1)
            assert stored and stored[0][0] == event.seq
            assert stored[0][1] == event.SerializeToString()
            checked += 1
    assert checked > 2000


def event_pb2_request(execution_id: str, after_seq: int = 0):  # type: ignore[no-untyped-def]
    from kodosumi.v1 import flow_pb2

    return flow_pb2.WatchExecutionRequest(execution_id=execution_id, after_seq=after_seq)


async def test_reconnect_gets_every_later_event_exactly_once_while_live(
    shared_node: RunningNode,
) -> None:
    execution_id = await launch(shared_node.flows, "emit-many", {"count": 5000})
    # The client processed only the first 100 events when its connection broke.
    first = (await collect(shared_node.flows, execution_id, limit=100))[:100]
    last_seen = first[-1].seq
    rest = await collect(shared_node.flows, execution_id, after_seq=last_seen)
    seqs = [e.seq for e in first] + [e.seq for e in rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert statuses(rest)[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_reconnect_after_the_end_replays_from_the_store(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "counting", {"steps": 5})
    everything = await collect(shared_node.flows, execution_id)
    for cut in (0, 1, 4, len(everything) - 1):
        again = await collect(shared_node.flows, execution_id, after_seq=cut)
        assert [e.SerializeToString() for e in again] == [
            e.SerializeToString() for e in everything[cut:]
        ]
    assert await collect(shared_node.flows, execution_id, after_seq=everything[-1].seq) == []


async def test_fifty_watchers_receive_the_identical_sequence(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "emit-many", {"count": 2000})
    streams = await asyncio.gather(*(collect(shared_node.flows, execution_id) for _ in range(50)))
    reference = [e.SerializeToString() for e in streams[0]]
    assert len(reference) > 2000
    for stream in streams[1:]:
        assert [e.SerializeToString() for e in stream] == reference


async def test_every_execution_ends_in_exactly_one_terminal_event(shared_node: RunningNode) -> None:
    terminal = {
        S.EXECUTION_STATUS_SUCCEEDED,
        S.EXECUTION_STATUS_FAILED,
        S.EXECUTION_STATUS_CANCELLED,
        S.EXECUTION_STATUS_TIMED_OUT,
    }
    for flow, inputs in (("hello", {}), ("fails", {}), ("times-out", {"seconds": 30})):
        events = await collect(shared_node.flows, await launch(shared_node.flows, flow, inputs))
        ends = [s for s in statuses(events) if s in terminal]
        assert len(ends) == 1
        assert events[-1].status_changed.status == ends[0]
