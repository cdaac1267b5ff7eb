"""A real node against a real registryd (both in-process, one throwaway CA, mTLS): it
registers its full state, heartbeats with its load, re-announces a changed catalog, keeps
serving while the registry is down and registers again when it returns, and leaves on stop."""

from __future__ import annotations

from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.config import FlowEntry
from kodosumid.servicers import VERSION
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import collect, eventually, launch, statuses
from tests.peers.conftest import Client, Cluster

FLOWS = tuple(f for f in TEST_FLOWS if f.name in ("hello", "sleepy"))
ONLINE, LEFT = rpb.REGISTERED_NODE_STATE_ONLINE, rpb.REGISTERED_NODE_STATE_LEFT


async def registered(reader: Client, node_id: str) -> rpb.RegisteredNode | None:
    nodes = await reader.registry.ListNodes(rpb.ListNodesRequest(), timeout=5)
    return next((n for n in nodes.nodes if n.node_id == node_id), None)


async def test_registers_full_state_heartbeats_and_leaves_on_stop(cluster: Cluster) -> None:
    registry = await cluster.registry()
    app = await cluster.node("node-a", FLOWS, registry=registry)
    reader = cluster.client(registry.address)

    async def is_online() -> bool:
        node = await registered(reader, "node-a")
        return node is not None and node.state == ONLINE

    await eventually(is_online, timeout=10)
    node = await registered(reader, "node-a")
    assert node is not None
    assert node.identity == f"spiffe://{cluster.pki.domain}/node/node-a"
    assert list(node.endpoints) == [app.address]
    assert node.version == VERSION
    assert "human-input" in node.capabilities
    assert {f.name for f in node.flows} == {"hello", "sleepy"}
    assert all(f.node_id == "node-a" for f in node.flows)
    assert node.heartbeat_interval.seconds == 1  # what the node asked for, granted
    first_beat = node.last_heartbeat_time.ToNanoseconds()

    # Heartbeats renew the lease and carry the load the node's NodeService reports.
    execution_id = await launch(cluster.client(app.address).flows, "sleepy", {"seconds": 30})

    async def beat_with_load() -> bool:
        node = await registered(reader, "node-a")
        return (
            node is not None
            and node.last_heartbeat_time.ToNanoseconds() > first_beat
            and node.load.running_executions + node.load.pending_executions == 1
        )

    await eventually(beat_with_load, timeout=10)
    assert app.network is not None and app.network.registration is not None
    assert app.network.registration.heartbeats >= 1

    await cluster.client(app.address).flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=execution_id), timeout=5
    )
    await app.stop()
    node = await registered(reader, "node-a")
    assert node is not None and node.state == LEFT and node.state_reason == "shutdown"


async def test_a_changed_catalog_is_registered_again(cluster: Cluster) -> None:
    registry = await cluster.registry()
    app = await cluster.node("node-a", FLOWS, registry=registry)
    reader = cluster.client(registry.address)

    async def offers(name: str) -> bool:
        node = await registered(reader, "node-a")
        return node is not None and name in {f.name for f in node.flows}

    await eventually(lambda: offers("hello"), timeout=10)
    assert app.executions is not None
    # A catalog that changes while the node runs (no reload API yet: change it in place).
    app.executions.catalog._flows["added-later"] = FlowEntry("added-later", "tests.flowlib:hello")
    await eventually(lambda: offers("added-later"), timeout=10)
    assert app.network is not None and app.network.registration is not None
    assert app.network.registration.registrations >= 2


async def test_node_serves_while_the_registry_is_down_and_registers_again(
    cluster: Cluster,
) -> None:
    registry = await cluster.registry("registry")
    port = registry.port
    app = await cluster.node("node-a", FLOWS, registry=registry)
    client = cluster.client(app.address)
    assert app.network is not None and app.network.registration is not None
    registration = app.network.registration
    await eventually(lambda: _true(registration.registered), timeout=10)

    await registry.stop(grace=0)

    async def lost() -> bool:
        return not registration.registered and "registry" in registration.last_error

    await eventually(lost, timeout=10)
    # The node keeps serving: a launch runs to the end without the registry.
    execution_id = await launch(client.flows, "hello", {"name": "offline"})
    events = await collect(client.flows, execution_id, timeout=30)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    # NodeService still answers too.
    info = await client.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=5)
    assert info.node.node_id == "node-a"

    # The registry returns on the same address with its data lost (a fresh state dir): the
    # node registers again and re-asserts its full state.
    back = await cluster.registry("registry-wiped", port=port)
    reader = cluster.client(back.address)

    async def online_again() -> bool:
        node = await registered(reader, "node-a")
        return node is not None and node.state == ONLINE and len(node.flows) == len(FLOWS)

    await eventually(online_again, timeout=15)
    assert registration.registered and registration.registrations >= 2


async def _true(value: bool) -> bool:
    return value
