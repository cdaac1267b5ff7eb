"""Flows calling flows (`ctx.call_flow`): the child runs on the node, both streams link the
two executions, the parent gets the child's result, and failure and cancellation carry over."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from kodosumi.authz import FLOW, NODE, Principal
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import event_pb2, flow_pb2, usage_pb2, usage_pb2_grpc
from kodosumid.config import NodeConfig
from kodosumid.event_store import ExecutionRecord
from kodosumid.executions.access import Access
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually, launch, statuses

S = event_pb2


async def _execution(node: RunningNode, execution_id: str) -> flow_pb2.Execution:
    response = await node.flows.GetExecution(
        flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
    )
    return response.execution


def _links(events: list[event_pb2.Event], relation: int) -> list[event_pb2.ChildExecution]:
    return [
        e.child_execution
        for e in events
        if e.HasField("child_execution") and e.child_execution.relation == relation
    ]


async def test_a_flow_calls_a_flow_and_both_streams_link_them(shared_node: RunningNode) -> None:
    parent_id = await launch(shared_node.flows, "parent-calls-child", {"name": "kid"})
    parent_events = await collect(shared_node.flows, parent_id)
    assert statuses(parent_events)[-1] == S.EXECUTION_STATUS_SUCCEEDED

    [link] = _links(parent_events, S.CHILD_RELATION_CHILD)
    assert link.flow == "hello"
    assert link.node_id == shared_node.app.config.node_id
    child_id = link.execution_id
    assert child_id and child_id != parent_id

    result = next(e.result for e in parent_events if e.HasField("result"))
    assert json_format.MessageToDict(result.json) == {"child_said": "hello kid"}

    child_events = await collect(shared_node.flows, child_id)
    # The node writes PENDING, the inputs and the link; the engine continues at seq 4.
    assert [e.seq for e in child_events] == list(range(1, len(child_events) + 1))
    assert child_events[2].HasField("child_execution")
    [back] = _links(child_events, S.CHILD_RELATION_PARENT)
    assert (back.execution_id, back.flow) == (parent_id, "parent-calls-child")
    assert back.node_id == shared_node.app.config.node_id
    assert next(e.result.text for e in child_events if e.HasField("result")) == "hello kid"

    child = await _execution(shared_node, child_id)
    parent = await _execution(shared_node, parent_id)
    assert child.parent_execution_id == parent_id
    assert child.status == S.EXECUTION_STATUS_SUCCEEDED
    # The child belongs to whoever launched the parent, so they see and manage it.
    assert child.owner == parent.owner
    assert parent.parent_execution_id == ""
    # Metering (docs/market.md): the child's usage rolls up into the parent's record, apart.
    usage = usage_pb2_grpc.UsageServiceStub(shared_node.channel)
    parent_usage = await usage.GetExecutionUsage(
        usage_pb2.GetExecutionUsageRequest(execution_id=parent_id), timeout=10
    )
    child_usage = await usage.GetExecutionUsage(
        usage_pb2.GetExecutionUsageRequest(execution_id=child_id), timeout=10
    )
    assert parent_usage.own.runs == 1 and parent_usage.own.attempts == 1
    assert parent_usage.children == child_usage.own and child_usage.own.runs == 1
    assert parent_usage.total.output_bytes == (
        parent_usage.own.output_bytes + child_usage.own.output_bytes
    )


async def test_a_failing_child_fails_the_parent_naming_it(shared_node: RunningNode) -> None:
    parent_id = await launch(shared_node.flows, "parent-calls-failing")
    parent_events = await collect(shared_node.flows, parent_id)
    assert statuses(parent_events)[-1] == S.EXECUTION_STATUS_FAILED
    [link] = _links(parent_events, S.CHILD_RELATION_CHILD)
    error = next(e.error for e in parent_events if e.HasField("error"))
    assert error.type == "ChildFlowFailed"
    parent = await _execution(shared_node, parent_id)
    assert "ChildFlowFailed" in parent.status_reason
    assert link.execution_id in parent.status_reason
    assert "'fails'" in parent.status_reason and "FAILED" in parent.status_reason
    assert "this flow always fails" in parent.status_reason
    child = await _execution(shared_node, link.execution_id)
    assert child.status == S.EXECUTION_STATUS_FAILED


async def test_cancelling_the_parent_cancels_the_child(shared_node: RunningNode) -> None:
    parent_id = await launch(shared_node.flows, "parent-calls-sleepy")
    # Follow the parent's stream until it names its child (the watch has a deadline).
    call = shared_node.flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id=parent_id), timeout=30
    )
    child_id = ""
    async for response in call:
        links = _links(list(response.events), S.CHILD_RELATION_CHILD)
        if links:
            child_id = links[0].execution_id
            call.cancel()
            break
    assert child_id
    await shared_node.flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=parent_id, reason="enough"), timeout=10
    )
    assert statuses(await collect(shared_node.flows, parent_id))[-1] == (
        S.EXECUTION_STATUS_CANCELLED
    )

    async def child_cancelled() -> bool:
        child = await _execution(shared_node, child_id)
        return child.status == S.EXECUTION_STATUS_CANCELLED

    await eventually(child_cancelled)


async def test_a_parent_on_another_node_is_refused(shared_node: RunningNode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await shared_node.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(
                flow="hello", inputs=dict_to_struct({}), parent_execution_id="0" * 32
            ),
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_only_the_parents_own_flow_or_node_acts_for_its_owner(tmp_path: Path) -> None:
    """The rule that lets a child belong to the parent's owner (no Ray, no server)."""
    config = NodeConfig(node_id="n1", state_dir=tmp_path)
    node = "spiffe://d.test/node/n1"
    access = Access(None, config.node_id, identity=node)  # type: ignore[arg-type]
    parent = ExecutionRecord(
        execution_id="p",
        flow="planner",
        owner="spiffe://d.test/user/ann",
        status=S.EXECUTION_STATUS_RUNNING,
        status_reason="",
        inputs={},
        create_ns=0,
        node_id="n1",
    )

    def caller(uri: str, *roles: str) -> Principal:
        return Principal(SpiffeId.parse(uri), frozenset(roles))

    assert access.speaks_for(caller("spiffe://d.test/flow/n1/planner", FLOW), parent)
    assert access.speaks_for(caller(node, NODE), parent)
    assert not access.speaks_for(caller("spiffe://d.test/flow/n1/other", FLOW), parent)
    assert not access.speaks_for(caller("spiffe://d.test/flow/n2/planner", FLOW), parent)
    assert not access.speaks_for(caller("spiffe://d.test/node/n2", NODE), parent)
    assert not access.speaks_for(caller("spiffe://d.test/user/bob", "user"), parent)
    assert not access.speaks_for(Principal(None, frozenset({"admin"})), parent)
    elsewhere = replace(parent, node_id="n2")
    assert not access.speaks_for(caller("spiffe://d.test/flow/n1/planner", FLOW), elsewhere)
