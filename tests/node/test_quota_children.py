"""Children a flow launches (`ctx.call_flow`) spend the quotas of the parent's owner, not
the flow's (issue 11): a user cannot get around their limits by fanning out through a flow,
and a flow identity launches only for a running execution of its own.

A real node on Ray; the calling flow dials with its own flow identity
(`flow/<node>/fans-out`), as it does on a node with an auth provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from a2a.types import a2a_pb2, a2a_pb2_grpc
from google.protobuf import json_format

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public
from kodosumi.rpc.channel import open_channel
from kodosumi.rpc.status import details_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial, pki_dir
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc
from kodosumid.auth.flow_identity import flows_dir
from kodosumid.config import FlowEntry
from kodosumid.quotas import Limits, QuotasConfig
from tests.a2a.helpers import data_message
from tests.node.conftest import TEST_FLOWS, NodeFactory, RunningNode
from tests.node.helpers import collect, eventually, launch, statuses
from tests.node.users import User

LIMITS = Limits(concurrent_executions=3, launches_per_minute=8, open_streams=0, stored_bytes=0)
FAN_OUT = "fans-out"


def _flow_identity(node: RunningNode, flow: str) -> TlsMaterial:
    """Issue `flow/<node>/<flow>` from the node's CA and put it where its executors look."""
    d = pki_dir(node.app.config.state_dir)
    ca = CertificateAuthority.load(d / "ca.pem", d / "ca.key")
    cert, key = ca.issue(SpiffeId.flow(ca.trust_domain, node.app.config.node_id, flow))
    folder = flows_dir(node.app.config.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_public(folder / "ca.pem", cert_pem(ca.cert))
    write_public(folder / f"{flow}.pem", cert_pem(cert))
    write_private(folder / f"{flow}.key", key_pem(key))
    return TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))


@pytest.fixture
async def node(start_node: NodeFactory) -> RunningNode:
    flows = (*TEST_FLOWS, FlowEntry(FAN_OUT, "tests.flowlib:fans_out"))
    return await start_node(quotas=QuotasConfig(LIMITS), flows=flows)


@pytest.fixture
async def flow_tls(node: RunningNode) -> TlsMaterial:
    return _flow_identity(node, FAN_OUT)


@pytest.fixture
async def mallory(node: RunningNode) -> AsyncIterator[User]:
    user = User(node, "mallory")
    yield user
    await user.close()


async def _outcomes(user: User, execution_id: str) -> list[str]:
    events = await collect(user.flows, execution_id)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED, events
    result = next(e.result for e in events if e.HasField("result"))
    outcomes: list[str] = json_format.MessageToDict(result.json)["outcomes"]
    return outcomes


async def test_children_beyond_the_owners_concurrency_are_refused(
    node: RunningNode, flow_tls: TlsMaterial, mallory: User
) -> None:
    quotas = node.app.quotas
    assert quotas is not None
    who = str(mallory.identity)
    flow_id = str(SpiffeId.flow(mallory.identity.trust_domain, node.app.config.node_id, FAN_OUT))
    parent = await launch(mallory.flows, FAN_OUT, {"count": 5, "seconds": 4.0, "parallel": True})

    # The parent and the two children the quota leaves room for count against mallory.
    async def charged_to_mallory() -> bool:
        return quotas.running(who) == 3

    await eventually(charged_to_mallory)
    assert quotas.running(flow_id) == 0
    outcomes = await _outcomes(mallory, parent)
    assert outcomes.count("ok") == 2, outcomes
    refused = [o for o in outcomes if o != "ok"]
    assert len(refused) == 3
    for outcome in refused:
        assert outcome.startswith("RESOURCE_EXHAUSTED: quota concurrent_executions"), outcome
        assert who in outcome and "limit 3" in outcome

    async def all_ended() -> bool:
        return quotas.running(who) == 0

    await eventually(all_ended)
    # The children are mallory's: hers to list, and stored under her name.
    page = await mallory.flows.ListExecutions(
        flow_pb2.ListExecutionsRequest(flow="sleepy"), timeout=10
    )
    assert len(page.executions) == 2
    assert {e.owner for e in page.executions} == {who}
    assert {e.parent_execution_id for e in page.executions} == {parent}


async def test_children_count_against_the_owners_launch_rate(
    node: RunningNode, flow_tls: TlsMaterial
) -> None:
    trent = User(node, "trent")
    try:
        parent = await launch(
            trent.flows, FAN_OUT, {"count": 9, "seconds": 0.01, "parallel": False}
        )
        outcomes = await _outcomes(trent, parent)
    finally:
        await trent.close()
    # One launch for the parent, seven children: the eighth and ninth are over the rate.
    assert outcomes[:7] == ["ok"] * 7, outcomes
    for outcome in outcomes[7:]:
        assert outcome.startswith("RESOURCE_EXHAUSTED: quota launches_per_minute"), outcome
        assert str(trent.identity) in outcome and "limit 8" in outcome


def _request(parent: str = "", flow: str = "hello") -> flow_pb2.LaunchExecutionRequest:
    return flow_pb2.LaunchExecutionRequest(
        flow=flow, inputs=dict_to_struct({}), parent_execution_id=parent
    )


async def _refusal(stub: flow_pb2_grpc.FlowServiceStub, request: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.LaunchExecution(request, timeout=10)
    return raised.value


async def test_a_flow_identity_launches_only_for_a_running_execution_of_its_own(
    node: RunningNode, flow_tls: TlsMaterial, mallory: User
) -> None:
    channel = open_channel(node.app.address, flow_tls, expect=ServerExpectation.node())
    as_flow = flow_pb2_grpc.FlowServiceStub(channel)
    try:
        # No parent: the child would belong to nobody (and to no one's quotas).
        error = await _refusal(as_flow, _request())
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert details_of(error)[0] == "PARENT_REQUIRED"
        # A parent that has ended: its flow launches nothing more for its owner.
        done = await launch(mallory.flows, FAN_OUT, {"count": 0, "seconds": 0.0, "parallel": False})
        await _outcomes(mallory, done)
        error = await _refusal(as_flow, _request(done))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(error)[0] == "PARENT_FINISHED"
        # A running execution of another flow: not this flow's to act for.
        other = await launch(mallory.flows, "sleepy", {"seconds": 30})
        error = await _refusal(as_flow, _request(other))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        await mallory.flows.CancelExecution(
            flow_pb2.CancelExecutionRequest(execution_id=other), timeout=10
        )
        # Its own running execution: the child is the owner's.
        running = await launch(
            mallory.flows, FAN_OUT, {"count": 1, "seconds": 3.0, "parallel": False}
        )
        child = await as_flow.LaunchExecution(_request(running), timeout=10)
        assert child.execution.owner == str(mallory.identity)
    finally:
        await channel.close()


async def test_code_of_this_node_launches_nothing_of_its_own_through_a2a(
    node: RunningNode, flow_tls: TlsMaterial
) -> None:
    """A flow (or the node's own certificate, which flows without an identity dial with)
    calling this node's A2A service would launch executions owned by no person and charged to
    a machine's generous quotas: refused, naming ctx.call_flow."""
    assert node.app.credentials is not None and node.app.credentials.files is not None
    for tls in (flow_tls, node.app.credentials.files.read()):
        channel = open_channel(node.app.address, tls, expect=ServerExpectation.node())
        try:
            request = a2a_pb2.SendMessageRequest(
                tenant="hello", message=data_message({"name": "x"})
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await a2a_pb2_grpc.A2AServiceStub(channel).SendMessage(
                    request, timeout=10, metadata=(("a2a-version", "1.0"),)
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "ctx.call_flow" in (refused.value.details() or "")
        finally:
            await channel.close()
    assert node.app.quotas is not None
    page = await node.flows.ListExecutions(flow_pb2.ListExecutionsRequest(flow="hello"), timeout=10)
    assert not page.executions
