"""Quotas per identity over a real node (issue 11): each quota, and a user who tries to get
around them — parallel launches racing the concurrency limit, many streams at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.status import details_of, quota_failures_of
from kodosumi.v1 import flow_pb2
from kodosumid.config import FlowEntry
from kodosumid.quotas import Limits, QuotasConfig
from tests.node.conftest import TEST_FLOWS, NodeFactory, RunningNode
from tests.node.helpers import collect, eventually, launch
from tests.node.test_cli_e2e import koco
from tests.node.users import User

LIMITS = Limits(
    concurrent_executions=2,
    launches_per_minute=6,
    open_streams=3,
    stored_bytes=0,
    max_input_bytes=4096,
)
FLOWS = (*TEST_FLOWS, FlowEntry("tiny-inputs", "tests.flowlib:hello", max_input_bytes=64))


@pytest.fixture
async def node(start_node: NodeFactory) -> RunningNode:
    return await start_node(quotas=QuotasConfig(LIMITS), flows=FLOWS)


@pytest.fixture
async def mallory(node: RunningNode) -> AsyncIterator[User]:
    user = User(node, "mallory")
    yield user
    await user.close()


def _launch_request(flow: str, inputs: dict[str, object]) -> flow_pb2.LaunchExecutionRequest:
    return flow_pb2.LaunchExecutionRequest(flow=flow, inputs=dict_to_struct(inputs))


def _assert_quota(error: BaseException, quota: str, limit: int) -> None:
    assert isinstance(error, grpc.aio.AioRpcError), error
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert details_of(error)[0] == f"QUOTA_{quota.upper()}"
    assert quota_failures_of(error) == [(quota, limit)]
    assert quota in (error.details() or "") and f"limit {limit}" in (error.details() or "")


async def test_parallel_launches_never_overshoot_the_concurrency_quota(
    node: RunningNode, mallory: User
) -> None:
    results = await asyncio.gather(
        *(
            mallory.flows.LaunchExecution(_launch_request("sleepy", {"seconds": 30}), timeout=30)
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    accepted = [r.execution.execution_id for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 2 and len(refused) == 4
    for error in refused:
        _assert_quota(error, "concurrent_executions", 2)
    # An ended execution gives its slot back.
    await mallory.flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=accepted[0]), timeout=10
    )
    await collect(mallory.flows, accepted[0])
    await launch(mallory.flows, "sleepy", {"seconds": 0.01})
    # The admin (the node's local user) is not held to the users' limits.
    await launch(node.flows, "sleepy", {"seconds": 0.01})
    await launch(node.flows, "sleepy", {"seconds": 0.01})


async def test_launch_rate_per_minute(node: RunningNode, mallory: User) -> None:
    for _ in range(6):
        execution_id = await launch(mallory.flows, "hello", {"name": "x"})
        await collect(mallory.flows, execution_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await launch(mallory.flows, "hello", {"name": "x"})
    _assert_quota(refused.value, "launches_per_minute", 6)
    other = User(node, "trent")  # a quota is per identity
    try:
        await launch(other.flows, "hello", {"name": "x"})
    finally:
        await other.close()


async def test_inputs_larger_than_the_limit_are_refused(node: RunningNode, mallory: User) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await launch(mallory.flows, "hello", {"name": "x" * 5000})
    _assert_quota(refused.value, "max_input_bytes", 4096)
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # the flow's own, smaller limit
        await launch(node.flows, "tiny-inputs", {"name": "x" * 100})
    _assert_quota(refused.value, "max_input_bytes", 64)


async def test_open_streams_are_bounded_per_identity(node: RunningNode, mallory: User) -> None:
    execution_id = await launch(mallory.flows, "sleepy", {"seconds": 30})
    channels = [mallory.open() for _ in range(4)]
    from kodosumi.v1 import flow_pb2_grpc

    calls = []
    try:
        request = flow_pb2.WatchExecutionRequest(execution_id=execution_id)
        for i in range(8):
            stub = flow_pb2_grpc.FlowServiceStub(channels[i % 4])
            calls.append(stub.WatchExecution(request, timeout=30))
        outcomes: list[object] = []
        for call in calls:
            try:
                outcomes.append(await asyncio.wait_for(call.read(), 10))
            except grpc.aio.AioRpcError as e:
                outcomes.append(e)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(refused) == 5, outcomes
        for error in refused:
            _assert_quota(error, "open_streams", 3)
        for call in calls:
            call.cancel()

        async def freed() -> bool:
            assert node.app.quotas is not None
            return node.app.quotas.streams(str(mallory.identity)) == 0

        await eventually(freed)
        first = mallory.flows.WatchExecution(request, timeout=30)
        assert (await first.read()).events[0].seq == 1
        first.cancel()
    finally:
        for channel in channels:
            await channel.close()


async def test_stored_bytes_quota(start_node: NodeFactory) -> None:
    node = await start_node(quotas=QuotasConfig(Limits(stored_bytes=1500)))
    user = User(node, "hoarder")
    try:
        for _ in range(10):
            try:
                execution_id = await launch(user.flows, "hello", {"name": "x" * 200})
            except grpc.aio.AioRpcError as e:
                _assert_quota(e, "stored_bytes", 1500)
                break
            await collect(user.flows, execution_id)
        else:
            raise AssertionError("the stored_bytes quota never held")
    finally:
        await user.close()


async def test_koco_exits_7_and_names_the_quota(node: RunningNode) -> None:
    result = await koco(node, "launch", "tiny-inputs", "-i", "name=" + "x" * 100)
    assert result.exit_code == 7, result.output
    assert "max_input_bytes" in result.output and "limit 64" in result.output


async def test_not_found_does_not_echo_a_huge_id(node: RunningNode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id="e" * 1_000_000), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(caught.value.details() or "") <= 1024
    size = sum(len(v) for _, v in caught.value.trailing_metadata() or ())
    assert size < 4096


async def test_list_executions_pages_are_bounded_in_bytes(start_node: NodeFactory) -> None:
    node = await start_node()
    big = {"name": "x" * 200_000}  # under the default max_input_bytes (256 KiB)
    launched = set()
    for _ in range(8):
        launched.add(await launch(node.flows, "hello", big))
    request = flow_pb2.ListExecutionsRequest(flow="hello")
    first = await node.flows.ListExecutions(request, timeout=30)
    assert 1 <= len(first.executions) < 8 and first.next_page_token
    assert first.ByteSize() <= 1024 * 1024 + 4096
    seen = {e.execution_id for e in first.executions}
    token = first.next_page_token
    while token:
        page = await node.flows.ListExecutions(
            flow_pb2.ListExecutionsRequest(flow="hello", page_token=token), timeout=30
        )
        seen |= {e.execution_id for e in page.executions}
        token = page.next_page_token
    assert seen == launched
