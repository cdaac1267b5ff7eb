"""Cancellation (cooperative and hard) and human input over gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kodosumi.jsonvalue import python_to_value
from kodosumi.v1 import event_pb2, flow_pb2
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually, launch, statuses

S = event_pb2


async def _wait_status(node: RunningNode, execution_id: str, status: int) -> None:
    async def reached() -> bool:
        response = await node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
        return bool(response.execution.status == status)

    await eventually(reached)


async def _cancel(node: RunningNode, execution_id: str) -> None:
    await node.flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=execution_id, reason="test says stop"),
        timeout=10,
    )


@pytest.mark.parametrize("flow", ["sleepy", "sleepy-isolated"])
async def test_cooperative_cancel(shared_node: RunningNode, flow: str) -> None:
    execution_id = await launch(shared_node.flows, flow, {"seconds": 120})
    await _wait_status(shared_node, execution_id, S.EXECUTION_STATUS_RUNNING)
    await _cancel(shared_node, execution_id)
    events = await collect(shared_node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert events[-1].status_changed.reason == "test says stop"


@pytest.mark.parametrize("flow", ["stubborn", "stubborn-isolated"])
async def test_a_flow_that_ignores_cancel_is_stopped_hard(
    shared_node: RunningNode, flow: str
) -> None:
    execution_id = await launch(shared_node.flows, flow, {"seconds": 120})
    await _wait_status(shared_node, execution_id, S.EXECUTION_STATUS_RUNNING)
    await _cancel(shared_node, execution_id)
    events = await collect(shared_node.flows, execution_id, timeout=30)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert "test says stop" in events[-1].status_changed.reason


async def test_cancel_of_a_finished_execution_fails_precondition(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "hello")
    await collect(shared_node.flows, execution_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _cancel(shared_node, execution_id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _provide(node: RunningNode, execution_id: str, request_id: str, value: object) -> None:
    await node.flows.ProvideInput(
        flow_pb2.ProvideInputRequest(
            execution_id=execution_id, request_id=request_id, value=python_to_value(value)
        ),
        timeout=10,
    )


async def test_input_round_trip_with_a_schema_violation(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "asks")
    head = await collect(shared_node.flows, execution_id, limit=6)
    request = next(e.input_requested for e in head if e.HasField("input_requested"))
    assert request.prompt == "How many?"
    await _wait_status(shared_node, execution_id, S.EXECUTION_STATUS_AWAITING_INPUT)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _provide(shared_node, execution_id, request.request_id, {"n": "many"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = _bad_fields(caught.value)
    assert fields == ["value.n"]

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await _provide(shared_node, execution_id, "not-a-request", {"n": 1})
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    await _provide(shared_node, execution_id, request.request_id, {"n": 7})
    events = await collect(shared_node.flows, execution_id)
    assert statuses(events)[-3:] == [
        S.EXECUTION_STATUS_AWAITING_INPUT,
        S.EXECUTION_STATUS_RUNNING,
        S.EXECUTION_STATUS_SUCCEEDED,
    ]
    provided = next(e.input_provided for e in events if e.HasField("input_provided"))
    assert provided.request_id == request.request_id
    assert provided.provided_by.startswith("spiffe://")
    assert next(e.result.text for e in events if e.HasField("result")) == '{"answer": {"n": 7}}'

    with pytest.raises(grpc.aio.AioRpcError) as done:
        await _provide(shared_node, execution_id, request.request_id, {"n": 1})
    assert done.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_input_timeout_uses_the_default(shared_node: RunningNode) -> None:
    events = await collect(shared_node.flows, await launch(shared_node.flows, "asks-with-timeout"))
    provided = next(e.input_provided for e in events if e.HasField("input_provided"))
    assert provided.timed_out
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED


def _bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    return [v.field for v in bad.field_violations]
    return []


async def test_a_watcher_hanging_up_leaves_the_other_watchers_of_the_run(
    shared_node: RunningNode,
) -> None:
    """Two clients watch a run that waits for input; one hangs up while both wait at the
    live end. The other still gets the rest of the run once it is answered (before the fix,
    the hang-up cancelled the shared wake-up and the other call hung with no status)."""
    execution_id = await launch(shared_node.flows, "asks")
    request = flow_pb2.WatchExecutionRequest(execution_id=execution_id)
    staying = shared_node.flows.WatchExecution(request, timeout=120)
    leaving = shared_node.flows.WatchExecution(request, timeout=120)
    asked: list[event_pb2.Event] = []
    for call, seen in ((staying, asked), (leaving, [])):
        while not any(e.HasField("input_requested") for e in seen):
            seen.extend((await asyncio.wait_for(call.read(), 60)).events)  # type: ignore[union-attr]
    await _wait_status(shared_node, execution_id, S.EXECUTION_STATUS_AWAITING_INPUT)

    async def both_wait_at_the_end() -> bool:
        tail = shared_node.app.executions.hub._tails.get(execution_id)  # type: ignore[union-attr]
        return tail is not None and tail.followers == 2 and tail._changed is not None

    await eventually(both_wait_at_the_end)
    leaving.cancel()
    request_id = next(e.input_requested.request_id for e in asked if e.HasField("input_requested"))
    await _provide(shared_node, execution_id, request_id, {"n": 3})
    rest: list[event_pb2.Event] = []
    async with asyncio.timeout(60):
        async for response in staying:
            rest.extend(response.events)
    assert statuses(rest)[-1] == S.EXECUTION_STATUS_SUCCEEDED
