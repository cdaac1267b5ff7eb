"""Peer calls: a client of node A launches a flow that only node B offers. A forwards the
launch to B as itself (mTLS, node identity) and relays B's stream into its own store, so
the client watches, resumes, cancels and answers input through A as if the flow ran there.

B is registered (and reached) through a TCP proxy, so the tests can break the relay's
connection mid-stream and finally make B unreachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from kodosumi.jsonvalue import python_to_value
from kodosumi.rpc.status import details_of
from kodosumi.v1 import event_pb2, flow_pb2, usage_pb2, usage_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.config import FlowEntry
from kodosumid.network.peer_client import FORWARDED_BY
from kodosumid.network.peers import Liveness
from registryd.daemon import RegistryDaemon
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import collect, eventually, launch, statuses
from tests.peers.conftest import Client, Cluster, peer_pki
from tests.peers.tcp_proxy import TcpProxy

S = event_pb2
TICKER = FlowEntry(
    "ticker",
    "tests.peers.peerflows:ticker",
    input_schema={
        "type": "object",
        "properties": {"count": {"type": "integer"}, "interval": {"type": "number"}},
        "required": ["count", "interval"],
    },
)
B_FLOWS = (TICKER, *(f for f in TEST_FLOWS if f.name in ("asks", "sleepy", "flaky")))
# `calls-flaky` on A calls B's `flaky`: a child run by the peer (metering's roll-up).
CALLS_FLAKY = FlowEntry("calls-flaky", "tests.peers.peerflows:calls_flaky")
A_FLOWS = (*(f for f in TEST_FLOWS if f.name == "hello"), CALLS_FLAKY)


@dataclass
class Peers:
    cluster: Cluster
    registry: RegistryDaemon
    a: NodeApp
    b: NodeApp
    proxy: TcpProxy
    user: Client  # alice, a plain user, talking to A

    async def stored(self, execution_id: str) -> flow_pb2.Execution:
        response = await self.user.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=5
        )
        return response.execution


async def input_request(client: Client, execution_id: str) -> event_pb2.InputRequested:
    """The first input request of an execution, read from a watch that then disconnects."""
    call = client.flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=30
    )
    async for response in call:
        for event in response.events:
            if event.HasField("input_requested"):
                call.cancel()
                return event.input_requested
    raise AssertionError("the execution ended without asking for input")


@pytest.fixture(scope="module")
async def peers(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Peers]:
    folder = tmp_path_factory.mktemp("forwarding")
    cluster = Cluster(peer_pki(folder / "pki"), folder)
    try:
        registry = await cluster.registry()
        proxy = TcpProxy()
        await proxy.start()
        b = await cluster.node("node-b", B_FLOWS, registry=registry, advertise=(proxy.address,))
        proxy.target_port = b.port
        a = await cluster.node("node-a", A_FLOWS, registry=registry)
        assert a.network is not None
        table = a.network.table

        async def b_is_alive() -> bool:
            peer = table.get("node-b")
            return peer is not None and peer.liveness is Liveness.ALIVE and "ticker" in peer.flows

        await eventually(b_is_alive, timeout=15)
        yield Peers(cluster, registry, a, b, proxy, cluster.client(a.address))
    finally:
        await cluster.close()


async def test_flows_of_the_peer_are_listed_with_their_node(peers: Peers) -> None:
    listed = await peers.user.flows.ListFlows(flow_pb2.ListFlowsRequest(), timeout=5)
    where = {f.name: f.node_id for f in listed.flows}
    assert where == {
        "hello": "node-a",
        "calls-flaky": "node-a",
        "ticker": "node-b",
        "asks": "node-b",
        "sleepy": "node-b",
        "flaky": "node-b",
    }
    got = await peers.user.flows.GetFlow(flow_pb2.GetFlowRequest(name="ticker"), timeout=5)
    assert got.flow.node_id == "node-b" and got.flow.entrypoint == TICKER.entrypoint


async def test_the_peer_validates_inputs_and_its_field_violations_reach_the_client(
    peers: Peers,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await launch(peers.user.flows, "ticker", {"count": "many", "interval": 0.1})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = details_of(caught.value)
    assert reason == "INVALID_INPUTS"
    assert [v.field for v in violations] == ["inputs.count"]


async def test_relayed_stream_is_resumable_and_exactly_once_across_broken_links(
    peers: Peers,
) -> None:
    execution_id = await launch(peers.user.flows, "ticker", {"count": 40, "interval": 0.05})
    # A watcher of A reads the beginning and disconnects.
    first = await collect(peers.user.flows, execution_id, limit=8)

    # Meanwhile the link A -> B breaks twice; each time the relay resumes from A's last seq.
    for _ in range(2):
        at_cut = (await peers.stored(execution_id)).last_seq
        peers.proxy.cut()

        async def resumed(at_cut: int = at_cut) -> bool:
            return (await peers.stored(execution_id)).last_seq > at_cut + 2

        await eventually(resumed, timeout=15)

    # The watcher resumes through A from the last seq it saw.
    rest = await collect(peers.user.flows, execution_id, after_seq=first[-1].seq)
    seen = first + rest
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert statuses(seen)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert sum(1 for s in statuses(seen) if s == S.EXECUTION_STATUS_SUCCEEDED) == 1
    assert sum(1 for e in seen if e.HasField("progress")) == 40

    # What B's watchers see (read on B as node-a, which owns the execution there) ...
    direct = peers.cluster.client(peers.b.address, peers.cluster.pki.node("node-a"))
    assert seen == await collect(direct.flows, execution_id)
    # ... and A stored B's bytes verbatim.
    assert peers.a.store is not None and peers.b.store is not None
    stored_a = await peers.a.store.read_events(execution_id, 0)
    assert stored_a == await peers.b.store.read_events(execution_id, 0)
    assert len(stored_a) == len(seen)

    record = await peers.stored(execution_id)
    assert record.node_id == "node-a" and record.flow == "ticker"
    assert record.status == S.EXECUTION_STATUS_SUCCEEDED and record.last_seq == len(seen)
    assert record.owner == f"spiffe://{peers.cluster.pki.domain}/user/alice"


async def test_cancel_and_input_go_through_to_the_peer(peers: Peers) -> None:
    asking = await launch(peers.user.flows, "asks")
    request = await input_request(peers.user, asking)
    await peers.user.flows.ProvideInput(
        flow_pb2.ProvideInputRequest(
            execution_id=asking, request_id=request.request_id, value=python_to_value({"n": 7})
        ),
        timeout=10,
    )
    done = await collect(peers.user.flows, asking)
    assert statuses(done)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert any(e.HasField("input_provided") for e in done)

    sleeping = await launch(peers.user.flows, "sleepy", {"seconds": 60})
    await collect(peers.user.flows, sleeping, limit=3)
    await peers.user.flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=sleeping, reason="changed my mind"),
        timeout=10,
    )
    ended = await collect(peers.user.flows, sleeping)
    assert statuses(ended)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert ended[-1].status_changed.reason == "changed my mind"


async def test_the_peer_runs_the_retries_and_the_relay_only_carries_them(peers: Peers) -> None:
    execution_id = await launch(peers.user.flows, "flaky", {"fail_times": 1})
    events = await collect(peers.user.flows, execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert S.EXECUTION_STATUS_RETRYING in statuses(events)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert {e.attempt for e in events} == {1, 2}
    assert (await peers.stored(execution_id)).attempt == 2
    # Node A runs no attempt of its own (no local retry pending, B's executor recorded) ...
    assert peers.a.executions is not None
    pending = [t.get_coro() for t in peers.a.executions.live.tasks]
    assert not [c for c in pending if getattr(c, "__qualname__", "").endswith("._retry")]
    assert peers.a.store is not None
    record = await peers.a.store.get_execution(execution_id)
    assert record is not None and record.executor == "peer:node-b"
    # ... and its events are B's, byte for byte.
    assert peers.b.store is not None
    stored_a = await peers.a.store.read_events(execution_id, 0)
    assert stored_a == await peers.b.store.read_events(execution_id, 0)
    # The usage A stores is B's, from B's relayed Usage events (docs/market.md, Metering).
    used_a = await peers.a.store.usage_of(execution_id)
    used_b = await peers.b.store.usage_of(execution_id)
    assert [u.attempt for u in used_a] == [1, 2] and {u.node for u in used_a} == {"node-b"}
    assert [u.wall_seconds for u in used_a] == [u.wall_seconds for u in used_b]


async def test_a_child_run_by_the_peer_rolls_up_into_its_parents_usage(peers: Peers) -> None:
    parent_id = await launch(peers.user.flows, "calls-flaky")
    events = await collect(peers.user.flows, parent_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    (child_id,) = [e.child_execution.execution_id for e in events if e.HasField("child_execution")]
    usage = usage_pb2_grpc.UsageServiceStub(peers.user.channel)
    parent = await usage.GetExecutionUsage(
        usage_pb2.GetExecutionUsageRequest(execution_id=parent_id), timeout=10
    )
    child = await usage.GetExecutionUsage(
        usage_pb2.GetExecutionUsageRequest(execution_id=child_id), timeout=10
    )
    assert [a.node_id for a in child.attempts] == ["node-b", "node-b"]
    # The parent's own figures stay its own; the child's (both attempts, run by B) are apart.
    assert [a.node_id for a in parent.attempts] == ["node-a"]
    assert parent.own.runs == 1 and parent.own.attempts == 1
    assert (parent.children.runs, parent.children.attempts) == (1, 2)
    assert parent.children.wall_seconds == pytest.approx(child.own.wall_seconds)
    assert parent.total.attempts == 3


async def test_a_forwarded_launch_is_never_forwarded_again(peers: Peers) -> None:
    for metadata, tls in (
        (((FORWARDED_BY, "node-x"),), None),  # marked as forwarded (insecure peers)
        ((), peers.cluster.pki.node("node-x")),  # or called by a node identity
    ):
        client = peers.cluster.client(peers.a.address, tls)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="sleepy"), metadata=metadata, timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_when_the_peer_dies_the_relayed_execution_fails_with_a_reason(
    peers: Peers,
) -> None:
    execution_id = await launch(peers.user.flows, "ticker", {"count": 600, "interval": 0.05})

    async def running() -> bool:
        return (await peers.stored(execution_id)).last_seq >= 5

    await eventually(running, timeout=15)
    await peers.proxy.stop()  # B is gone for A: no connection gets through any more

    events = await collect(peers.user.flows, execution_id, timeout=30)
    # Watchers are told at once that the peer is lost, then the outcome after the grace.
    assert statuses(events)[-2:] == [S.EXECUTION_STATUS_PEER_LOST, S.EXECUTION_STATUS_FAILED]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert "node-b is unreachable" in events[-2].status_changed.reason
    assert "node-b unreachable" in events[-1].status_changed.reason
    # B's Usage event never came: A records the attempt itself, saying why.
    assert peers.a.store is not None
    (used,) = await peers.a.store.usage_of(execution_id)
    assert used.source == "node" and "node-b unreachable" in used.note

    # Health checks mark B dead: its flows are no longer offered, launches are refused as
    # UNAVAILABLE (retryable), not as an unknown flow.
    assert peers.a.network is not None
    table = peers.a.network.table

    async def b_dead() -> bool:
        peer = table.get("node-b")
        return peer is not None and peer.liveness is Liveness.DEAD

    await eventually(b_dead, timeout=10)
    listed = await peers.user.flows.ListFlows(flow_pb2.ListFlowsRequest(), timeout=5)
    assert [f.name for f in listed.flows] == ["hello", "calls-flaky"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await launch(peers.user.flows, "ticker", {"count": 1, "interval": 0})
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
