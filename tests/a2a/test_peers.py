"""A2A tasks for a flow the node lacks: forwarded to the peer that offers it, as launches are,
and relayed back, so the A2A client of node A streams, answers and reads the task there."""

from __future__ import annotations

from a2a.client import ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import value_to_python
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.v1 import event_pb2
from kodosumid.config import FlowEntry
from kodosumid.network.peers import Liveness
from tests.a2a.conftest import bootstrap_card
from tests.a2a.helpers import collect, data_message, send_request
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import collect as watch_all
from tests.node.helpers import eventually, launch, statuses
from tests.peers.conftest import Cluster, cluster  # noqa: F401  (a fixture)

B_FLOWS = tuple(f for f in TEST_FLOWS if f.name in ("asks", "emit-many"))
A_FLOWS = tuple(f for f in TEST_FLOWS if f.name == "hello")


async def test_a_task_for_a_peers_flow_is_forwarded_and_relayed(
    cluster: Cluster,  # noqa: F811
) -> None:
    registry = await cluster.registry()
    await cluster.node("node-b", B_FLOWS, registry=registry)
    a = await cluster.node("node-a", A_FLOWS, registry=registry)
    assert a.network is not None
    table = a.network.table

    async def b_is_alive() -> bool:
        peer = table.get("node-b")
        return peer is not None and peer.liveness is Liveness.ALIVE and "asks" in peer.flows

    await eventually(b_is_alive, timeout=15)
    alice = cluster.pki.user("alice")
    config = ClientConfig(
        grpc_channel_factory=lambda url: open_channel(url, alice, expect=ServerExpectation.node()),
        supported_protocol_bindings=["GRPC"],
    )
    factory = ClientFactory(config)
    emit = factory.create(bootstrap_card(a.address, "emit-many"))
    asks = factory.create(bootstrap_card(a.address, "asks"))
    try:
        items = await collect(emit.send_message(send_request(data_message({"count": 3}))))
        assert items[0].task.status.state == a2a.TASK_STATE_SUBMITTED
        assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
        result = [i.artifact_update for i in items if i.HasField("artifact_update")][-1]
        data = next(p for p in result.artifact.parts if p.HasField("data"))
        assert value_to_python(data.data) == {"emitted": 3}
        task = await emit.get_task(a2a.GetTaskRequest(id=items[0].task.id))
        assert task.status.state == a2a.TASK_STATE_COMPLETED

        # Input required, answered through A; the answer is forwarded to B.
        items = await collect(asks.send_message(send_request(data_message({}))))
        assert items[-1].status_update.status.state == a2a.TASK_STATE_INPUT_REQUIRED
        answer = data_message({"n": 5}, items[0].task.id)
        items = await collect(asks.send_message(send_request(answer)))
        assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
    finally:
        await emit.close()
        await asks.close()


CALLS_AGENT = FlowEntry("calls-agent", "tests.a2a.flows:calls_agent")


async def test_a_flow_calls_another_nodes_a2a_agent(cluster: Cluster) -> None:  # noqa: F811
    b = await cluster.node("node-b", A_FLOWS)
    a = await cluster.node("node-a", (CALLS_AGENT,))
    client = cluster.client(a.address)
    execution_id = await launch(
        client.flows, "calls-agent", {"address": b.address, "tenant": "hello", "name": "ada"}
    )
    events = await watch_all(client.flows, execution_id)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    result = next(e.result for e in events if e.HasField("result"))
    assert value_to_python(result.json) == {"agent_said": "hello ada"}
    relayed = [e.framework_event for e in events if e.HasField("framework_event")]
    assert next(f.type for f in relayed) == "task"
    assert {f.framework for f in relayed} == {"a2a"}
    assert "artifact_update" in {f.type for f in relayed}
