from __future__ import annotations

from kodosumi.v1 import event_pb2
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, kinds, launch, statuses


async def test_hello_runs_end_to_end(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "hello", {"name": "kodosumi"})
    events = await collect(shared_node.flows, execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert statuses(events) == [
        event_pb2.EXECUTION_STATUS_PENDING,
        event_pb2.EXECUTION_STATUS_STARTING,
        event_pb2.EXECUTION_STATUS_RUNNING,
        event_pb2.EXECUTION_STATUS_SUCCEEDED,
    ]
    assert "output_line" in kinds(events)
    result = next(e.result for e in events if e.HasField("result"))
    assert result.text == "hello kodosumi"
