"""Finished executions can be deleted, one by one or by a retention setting."""

from __future__ import annotations

import grpc
import pytest

from kodosumi.v1 import flow_pb2
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.helpers import collect, eventually, launch


async def test_delete_a_finished_execution(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "hello")
    await collect(shared_node.flows, execution_id)
    await shared_node.flows.DeleteExecution(
        flow_pb2.DeleteExecutionRequest(execution_id=execution_id), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await shared_node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert shared_node.app.store is not None
    assert await shared_node.app.store.read_events(execution_id, 0) == []


async def test_a_running_execution_cannot_be_deleted(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "sleepy", {"seconds": 60})
    with pytest.raises(grpc.aio.AioRpcError) as running:
        await shared_node.flows.DeleteExecution(
            flow_pb2.DeleteExecutionRequest(execution_id=execution_id), timeout=10
        )
    assert running.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await shared_node.flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=execution_id), timeout=10
    )


async def test_retention_expires_finished_executions(start_node: NodeFactory) -> None:
    node = await start_node(retention_seconds=1.0)
    execution_id = await launch(node.flows, "hello")
    await collect(node.flows, execution_id)
    store = node.app.store
    assert store is not None

    async def expired() -> bool:
        return await store.get_execution(execution_id) is None

    await eventually(expired, timeout=30)
    assert await store.read_events(execution_id, 0) == []
