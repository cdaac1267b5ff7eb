"""Bad requests get a clear status naming the problem; the node keeps SERVING."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import flow_pb2
from tests.node.conftest import RunningNode


def _details(error: grpc.aio.AioRpcError) -> tuple[str, list[str]]:
    reason, fields = "", []
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields = [v.field for v in bad.field_violations]
    return reason, fields


async def _serving(node: RunningNode) -> bool:
    health = health_pb2_grpc.HealthStub(node.channel)
    response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def test_unknown_flow_is_not_found(shared_node: RunningNode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shared_node.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="no-such-flow"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert _details(caught.value)[0] == "FLOW_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as flow:
        await shared_node.flows.GetFlow(flow_pb2.GetFlowRequest(name="nope"), timeout=10)
    assert flow.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.GetExecution(flow_pb2.GetExecutionRequest(execution_id="nope"), timeout=10),
        lambda s: s.CancelExecution(
            flow_pb2.CancelExecutionRequest(execution_id="nope"), timeout=10
        ),
        lambda s: s.ProvideInput(
            flow_pb2.ProvideInputRequest(execution_id="nope", request_id="r"), timeout=10
        ),
    ],
)
async def test_unknown_execution_is_not_found(shared_node: RunningNode, call: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(shared_node.flows)  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert _details(caught.value)[0] == "EXECUTION_NOT_FOUND"


async def test_watch_of_unknown_execution_is_not_found(shared_node: RunningNode) -> None:
    call = shared_node.flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id="nope"), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_inputs_violating_the_schema_name_each_field(shared_node: RunningNode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shared_node.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(
                flow="hello", inputs=dict_to_struct({"name": "", "extra": 1})
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, fields = _details(caught.value)
    assert reason == "INVALID_INPUTS"
    # Each bad field by its own path (issue 17): the unknown one too, saying what is accepted.
    assert sorted(fields) == ["inputs.extra", "inputs.name"]
    assert "inputs.name" in (caught.value.details() or "")
    assert "inputs.extra: unknown (expected one of: name)" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await shared_node.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="emit-many"), timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs.count: required" in (missing.value.details() or "")
    assert await _serving(shared_node)


async def test_malformed_request_bytes_are_invalid_argument(shared_node: RunningNode) -> None:
    raw = shared_node.channel.unary_unary(
        "/kodosumi.v1.FlowService/GetExecution",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff\xff\x0f", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(caught.value)[0] == "MALFORMED_REQUEST"
    assert await _serving(shared_node)


async def test_oversized_request_is_resource_exhausted(shared_node: RunningNode) -> None:
    big = dict_to_struct({"name": "x" * (5 * 1024 * 1024)})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shared_node.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="hello", inputs=big), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await _serving(shared_node)


async def test_bad_page_arguments(shared_node: RunningNode) -> None:
    for request in (
        flow_pb2.ListExecutionsRequest(page_size=-1),
        flow_pb2.ListExecutionsRequest(page_token="not-a-token!"),
        flow_pb2.ListExecutionsRequest(statuses=[99]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shared_node.flows.ListExecutions(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
