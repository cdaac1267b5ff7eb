"""Many concurrent I/O-bound executions share executor processes, their events kept apart.
(A quick version of `bench/scale.py`, which runs 1,000.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from tests.node.conftest import NodeFactory
from tests.node.helpers import collect, eventually, launch, statuses

CONCURRENT = 200


async def test_two_hundred_sleeping_executions_run_at_once(start_node: NodeFactory) -> None:
    node = await start_node()
    pool = replace(node.app.config.pool, max_executions_per_executor=100)
    assert node.app.pool is not None
    node.app.pool.config = pool
    ids = await asyncio.gather(
        *(launch(node.flows, "sleepy", {"seconds": 3}) for _ in range(CONCURRENT))
    )

    async def all_running() -> bool:
        info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
        return info.load.running_executions == CONCURRENT

    await eventually(all_running, timeout=60)
    streams = await asyncio.gather(*(collect(node.flows, i) for i in ids))
    for execution_id, events in zip(ids, streams, strict=True):
        assert {e.execution_id for e in events} == {execution_id}
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    assert node.app.pool is not None
    assert len(node.app.pool.shared) == 2  # 200 executions, 100 per shared executor


async def test_every_watch_ends_when_many_executions_end_at_once(start_node: NodeFactory) -> None:
    """Watchers racing the store's commits of many terminal events still see their streams end
    (a watcher that read a terminal event from the store must not wait for it live)."""
    node = await start_node()
    ids = await asyncio.gather(
        *(launch(node.flows, "sleepy", {"seconds": 120}) for _ in range(200))
    )

    async def all_running() -> bool:
        info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
        return info.load.running_executions == len(ids)

    await eventually(all_running, timeout=60)
    cancels = [
        node.flows.CancelExecution(flow_pb2.CancelExecutionRequest(execution_id=i), timeout=10)
        for i in ids
    ]
    # Watches start while the cancellations' terminal events are being committed.
    watches = [collect(node.flows, i, timeout=60) for i in ids]
    results = await asyncio.gather(*cancels, *watches)
    for events in results[len(ids) :]:
        assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_CANCELLED
