"""A hostile peer (issue 11): a node of the trust domain that takes a forwarded launch and
then sends what a relay must not take. The relay ends with a reason naming the peer and what
it did, the execution is FAILED with it, and the node goes on serving; a flood of valid
events is relayed under flow control, the node holding a bounded amount of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from kodosumi.pki import cert_pem, key_pem
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, flow_pb2
from kodosumid.app import NodeApp
from tests.memory import peak_rss, settled_rss
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import collect, eventually, launch, statuses
from tests.peers.conftest import PEERS, Client, Cluster
from tests.peers.hostile_peer import FLOW, HostilePeer

S = event_pb2
A_FLOWS = tuple(f for f in TEST_FLOWS if f.name == "hello")


@dataclass
class Setup:
    node: NodeApp
    hostile: HostilePeer
    user: Client

    async def relayed(self) -> tuple[str, list[event_pb2.Event], flow_pb2.Execution]:
        """Launch `evil` on the node (forwarded to the hostile peer) and follow it to its end."""
        execution_id = await launch(self.user.flows, FLOW, {})
        events = await collect(self.user.flows, execution_id, timeout=60)
        response = await self.user.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
        return execution_id, events, response.execution

    async def still_serves(self) -> None:
        execution_id = await launch(self.user.flows, "hello", {"name": "after"})
        assert statuses(await collect(self.user.flows, execution_id))[-1] == (
            S.EXECUTION_STATUS_SUCCEEDED
        )


def _hostile_tls(cluster: Cluster) -> TlsMaterial:
    ca = cluster.pki.pki.ca
    cert, key = ca.issue(
        SpiffeId.node(cluster.pki.domain, "hostile"),
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )
    return TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))


@pytest.fixture
async def setup(cluster: Cluster, request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    """`@pytest.mark.node_peers(**changes)`: the node's `[peers]` settings changed so."""
    marker = request.node.get_closest_marker("node_peers")
    peers = replace(PEERS, **marker.kwargs) if marker else PEERS
    registry = await cluster.registry()
    hostile = HostilePeer("hostile", _hostile_tls(cluster))
    await hostile.start()
    try:
        await hostile.register(registry.address)
        node = await cluster.node("node-a", A_FLOWS, registry=registry, peers=peers)

        async def knows_the_peer() -> bool:
            return bool(node.network is not None and node.network.table.candidates(FLOW))

        await eventually(knows_the_peer)
        yield Setup(node, hostile, cluster.client(node.address))
    finally:
        await hostile.stop()


async def test_an_oversize_message_ends_the_relay_with_a_reason(setup: Setup) -> None:
    setup.hostile.mode, setup.hostile.size = "oversize", 8 * 1024 * 1024
    _, events, execution = await setup.relayed()
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    reason = execution.status_reason
    assert "hostile" in reason and "larger than" in reason and "4194304" in reason, reason
    assert not any(e.HasField("output_line") for e in events)  # nothing of it was stored
    await setup.still_serves()


async def test_bytes_that_are_no_event_end_the_relay(setup: Setup) -> None:
    setup.hostile.mode = "garbage"
    _, events, execution = await setup.relayed()
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "hostile" in execution.status_reason and "event" in execution.status_reason
    await setup.still_serves()


async def test_events_out_of_order_end_the_relay(setup: Setup) -> None:
    setup.hostile.mode = "gap"
    _, events, execution = await setup.relayed()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # gapless here
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "hostile" in execution.status_reason and "seq 5" in execution.status_reason
    await setup.still_serves()


@pytest.mark.node_peers(max_execution_bytes=1024 * 1024)
async def test_a_stream_past_the_byte_cap_ends_the_relay(setup: Setup) -> None:
    """Valid events forever would fill the disk: past `peers.max_execution_bytes` the relay
    ends, the execution is FAILED with a reason naming the peer and the limit, and no more
    than the cap was stored."""
    setup.hostile.mode, setup.hostile.size, setup.hostile.count = "flood", 64 * 1024, 1000
    execution_id, events, execution = await setup.relayed()
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    reason = execution.status_reason
    assert "hostile" in reason and str(1024 * 1024) in reason, reason
    assert "max_execution_bytes" in reason, reason
    assert setup.node.store is not None
    stored, after = 0, 0
    while rows := await setup.node.store.read_events(execution_id, after):
        stored, after = stored + sum(len(data) for _, data in rows), rows[-1][0]
    assert stored <= 1024 * 1024 + 4096  # the cap, and this node's own FAILED event
    assert setup.hostile.sent_bytes < 64 * 1024 * 1000  # the peer was cut off
    await setup.still_serves()


@pytest.mark.slow
async def test_a_flood_is_relayed_under_flow_control(setup: Setup) -> None:
    """100 MB of valid events as fast as the peer may send: the relay stores one response at
    a time, and the transport holds what its window allows, so the node's memory stays."""
    setup.hostile.mode, setup.hostile.size, setup.hostile.count = "flood", 64 * 1024, 1600
    import os

    pid = os.getpid()
    before = await settled_rss(pid)
    execution_id = await launch(setup.user.flows, FLOW, {})

    async def relayed_all() -> bool:
        live = setup.node.executions.live.get(execution_id) if setup.node.executions else None
        return live is None

    peak = 0

    async def watch_memory() -> bool:
        nonlocal peak
        peak = max(peak, await peak_rss(pid, seconds=0.5, interval=0.1))
        return await relayed_all()

    await eventually(watch_memory, timeout=120)
    growth = peak - before
    print(
        f"process RSS {before / 2**20:.0f} -> {peak / 2**20:.0f} MiB, peer sent "
        f"{setup.hostile.sent_bytes / 2**20:.0f} MiB"
    )
    assert setup.hostile.sent_bytes > 100_000_000
    events = await collect(setup.user.flows, execution_id, timeout=120)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert len(events) == 1600 + 2
    assert growth <= 64 * 1024 * 1024, f"the node grew {growth / 2**20:.0f} MiB"
