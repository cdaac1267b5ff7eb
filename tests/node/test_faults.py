"""What happens when an executor dies, and when the node stops or restarts."""

from __future__ import annotations

import ray

from kodosumi.v1 import event_pb2, flow_pb2
from tests.node.conftest import NodeFactory
from tests.node.helpers import collect, eventually, launch, statuses

S = event_pb2


async def test_killing_the_executor_ends_the_execution_failed(start_node: NodeFactory) -> None:
    node = await start_node()
    execution_id = await launch(node.flows, "sleepy-isolated", {"seconds": 120})

    async def running() -> bool:
        response = await node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
        return bool(response.execution.status == S.EXECUTION_STATUS_RUNNING)

    await eventually(running)
    store = node.app.store
    assert store is not None
    record = await store.get_execution(execution_id)
    assert record is not None and record.executor
    ray.kill(ray.get_actor(record.executor, namespace="kodosumi"), no_restart=True)
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "died" in events[-1].status_changed.reason
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_stop_records_an_explicit_status_for_running_executions(
    start_node: NodeFactory, tmp_path_factory: object
) -> None:
    node = await start_node()
    execution_id = await launch(node.flows, "stubborn", {"seconds": 300})
    await eventually(lambda: _has_status(node, execution_id, S.EXECUTION_STATUS_RUNNING))
    await node.close()
    await node.app.stop()
    restarted = await start_node(state_dir=node.app.config.state_dir)
    events = await collect(restarted.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def _has_status(node, execution_id: str, status: int) -> bool:  # type: ignore[no-untyped-def]
    response = await node.flows.GetExecution(
        flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
    )
    return bool(response.execution.status == status)
