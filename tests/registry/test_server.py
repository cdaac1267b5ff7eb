"""The registry daemon over real gRPC on 127.0.0.1:0 with mTLS (a throwaway PKI; nodes, users
and flows hold certificates of the same CA): writes, reads, filters, watch and resume,
authorization, validation errors with details, restart with a grace period, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodosumi.jsonvalue import dict_to_struct, struct_to_dict
from kodosumi.rpc.channel import open_channel
from kodosumi.rpc.status import details_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.v1 import auth_pb2, auth_pb2_grpc, flow_pb2, node_pb2, registry_pb2_grpc
from kodosumi.v1 import registry_pb2 as pb
from registryd.clock import ManualClock
from registryd.daemon import ListenError, RegistryDaemon, StateDirBusy
from tests.registry.conftest import Pki, RegistryFactory, StubFactory, make_pki, registry_config
from tests.registry.helpers import eventually, flow_pb, register_request, seconds

ONLINE = pb.REGISTERED_NODE_STATE_ONLINE
OFFLINE = pb.REGISTERED_NODE_STATE_OFFLINE
LEFT = pb.REGISTERED_NODE_STATE_LEFT
K = pb.RegistryChangeKind


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def changes_of(
    stream: AsyncIterator[pb.WatchRegistryResponse], count: int
) -> list[pb.RegistryChange]:
    """The next `count` changes of a watch stream, with a deadline."""
    got: list[pb.RegistryChange] = []
    async with asyncio.timeout(15):
        while len(got) < count:
            response = await anext(stream)
            assert not response.created
            got += response.changes
    return got


async def test_health_and_registry_json(start_registry: RegistryFactory, pki: Pki) -> None:
    daemon = await start_registry()
    info = json.loads(daemon.address_file.read_text())
    assert info["address"] == daemon.address
    assert info["identity"] == "spiffe://test.kodosumi/registry/test-registry"
    assert info["ca_cert"] == str(pki.ca_cert)
    async with open_channel(
        daemon.address, pki.user(), expect=ServerExpectation.registry()
    ) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "kodosumi.v1.RegistryService"):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING
    await daemon.stop()
    assert not daemon.address_file.exists()


async def test_register_heartbeat_list_and_filter(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    a, b = connect(daemon, pki.node("node-a")), connect(daemon, pki.node("node-b"))
    reader = connect(daemon, pki.user())
    registered = await a.RegisterNode(
        register_request("node-a", [flow_pb("hello", "demo"), flow_pb("search", "web")], interval=5)
    )
    assert registered.node.state == ONLINE
    assert registered.node.identity == "spiffe://test.kodosumi/node/node-a"
    assert registered.lease.ttl.ToSeconds() == 15
    assert registered.lease.heartbeat_interval.ToSeconds() == 5
    assert [f.node_id for f in registered.node.flows] == ["node-a", "node-a"]
    await b.RegisterNode(register_request("node-b", [flow_pb("search", "demo")]))

    load = node_pb2.NodeLoad(running_executions=2, uptime_seconds=9)
    beat = await a.Heartbeat(pb.HeartbeatRequest(node_id="node-a", load=load))
    assert beat.lease.heartbeat_interval.ToSeconds() == 5
    node = (await reader.GetNode(pb.GetNodeRequest(node_id="node-a"))).node
    assert (node.load.running_executions, node.load.uptime_seconds) == (2, 9)
    assert struct_to_dict(node.flows[0].input_schema)["properties"]["query"]["type"] == "string"

    async def listed(**request: object) -> list[str]:
        response = await reader.ListNodes(pb.ListNodesRequest(**request))  # type: ignore[arg-type]
        return [n.node_id for n in response.nodes]

    assert await listed() == ["node-a", "node-b"]
    assert await listed(flow_tag="web") == ["node-a"]
    assert await listed(flow_name="search") == ["node-a", "node-b"]
    assert await listed(flow_name="search", flow_tag="demo") == ["node-b"]
    assert await listed(states=[OFFLINE]) == []

    offers = await reader.ListFlowOffers(pb.ListFlowOffersRequest(flow_name="search"))
    assert [(o.flow.node_id, o.flow.name) for o in offers.offers] == [
        ("node-a", "search"),
        ("node-b", "search"),
    ]
    assert offers.offers[0].endpoints == ["127.0.0.1:7450"]
    assert offers.revision == (await reader.ListNodes(pb.ListNodesRequest())).revision
    offer = await reader.GetFlowOffer(pb.GetFlowOfferRequest(node_id="node-b", flow_name="search"))
    assert offer.offer.flow.tags == ["demo"]
    missing = await failure(
        reader.GetFlowOffer(pb.GetFlowOfferRequest(node_id="node-b", flow_name="hello"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(missing)[0] == "FLOW_OFFER_NOT_FOUND"

    left = await b.DeregisterNode(pb.DeregisterNodeRequest(node_id="node-b", reason="bye"))
    assert (left.node.state, left.node.state_reason) == (LEFT, "bye")
    assert await listed(states=[ONLINE]) == ["node-a"]
    assert await listed(states=[LEFT]) == ["node-b"]


async def test_list_pages_through_many_nodes(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry(insecure=True)
    stub = connect(daemon, None)
    for i in range(7):
        await stub.RegisterNode(register_request(f"n{i}"))
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(page_size=3, page_token=token))
        seen += [n.node_id for n in page.nodes]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"n{i}" for i in range(7)]
    bad = await failure(stub.ListNodes(pb.ListNodesRequest(page_token="garbage!")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(bad)[1][0].field == "page_token"


async def test_list_pages_are_bounded_in_bytes(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    """Issue 11: a node's entry carries its catalog; a page of large catalogs ends at about
    1 MiB with a token instead of growing past what clients accept."""
    daemon = await start_registry(insecure=True)
    stub = connect(daemon, None)
    big = flow_pb2.Flow(
        name="big", entrypoint="flows.big:run", input_schema=dict_to_struct({"d": "x" * 400_000})
    )
    for i in range(6):
        await stub.RegisterNode(register_request(f"n{i}", [big]))
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(page_token=token))
        assert 1 <= len(page.nodes) <= 2 and page.ByteSize() < 1024 * 1024 + 64 * 1024
        seen += [n.node_id for n in page.nodes]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"n{i}" for i in range(6)]


async def test_flow_offer_pages_are_bounded_in_bytes(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    """Issue 11: offers carry their flows' schemas; a page ends at about 1 MiB with a token
    (before, every offer of the registry came in one response)."""
    daemon = await start_registry(insecure=True)
    stub = connect(daemon, None)
    big = flow_pb2.Flow(
        name="big", entrypoint="flows.big:run", input_schema=dict_to_struct({"d": "x" * 400_000})
    )
    for i in range(6):
        await stub.RegisterNode(register_request(f"n{i}", [big, flow_pb("a"), flow_pb("z")]))
    seen: list[tuple[str, str]] = []
    token, pages = "", 0
    while True:
        page = await stub.ListFlowOffers(pb.ListFlowOffersRequest(page_token=token))
        assert page.offers and page.ByteSize() < 1024 * 1024 + 64 * 1024
        seen += [(o.flow.name, o.flow.node_id) for o in page.offers]
        token, pages = page.next_page_token, pages + 1
        if not token:
            break
    assert pages >= 3
    assert seen == [(name, f"n{i}") for name in ("a", "big", "z") for i in range(6)]
    small = await stub.ListFlowOffers(pb.ListFlowOffersRequest(page_size=4, tag="x"))
    assert len(small.offers) == 0 and not small.next_page_token
    bad = await failure(stub.ListFlowOffers(pb.ListFlowOffersRequest(page_token="bad!")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_open_streams_are_bounded_per_identity(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    """Issue 11: each unread stream costs the registry a bounded amount, and one identity
    holds at most `open_streams` of them (WatchRegistry and WatchAuthState together)."""
    daemon = await start_registry(open_streams=3)
    node = pki.node("n1")
    registry = connect(daemon, node)
    channel = open_channel(daemon.address, node, expect=ServerExpectation.registry())
    try:
        state = auth_pb2_grpc.AuthServiceStub(channel).WatchAuthState(
            auth_pb2.WatchAuthStateRequest(), timeout=30
        )
        await state.read()
        watches = [registry.WatchRegistry(pb.WatchRegistryRequest(), timeout=30) for _ in range(3)]
        outcomes: list[object] = []
        for call in watches:
            try:
                outcomes.append(await call.read())
            except grpc.aio.AioRpcError as e:
                outcomes.append(e)
        [refused] = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details_of(refused)[0] == "QUOTA_OPEN_STREAMS"
        other = connect(daemon, pki.user("someone"))  # a quota is per identity
        call = other.WatchRegistry(pb.WatchRegistryRequest(), timeout=30)
        assert (await call.read()).created
        call.cancel()
        state.cancel()  # a stream that ends gives its slot back

        async def reopened() -> bool:
            again = registry.WatchRegistry(pb.WatchRegistryRequest(), timeout=30)
            try:
                return bool((await again.read()).created)
            except grpc.aio.AioRpcError:
                return False
            finally:
                again.cancel()

        await eventually(reopened)
        for call in watches:
            call.cancel()
    finally:
        await channel.close()


async def test_watch_follows_changes_and_resumes_after_a_disconnect(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki, clock: ManualClock
) -> None:
    daemon = await start_registry()
    reader = connect(daemon, pki.user())
    a = connect(daemon, pki.node("node-a"))
    listing = await reader.ListNodes(pb.ListNodesRequest())
    call = reader.WatchRegistry(pb.WatchRegistryRequest(after_revision=listing.revision))
    stream = aiter(call)
    created = await anext(stream)
    assert created.created and created.revision == listing.revision == 0

    await a.RegisterNode(register_request("node-a", [flow_pb("hello"), flow_pb("search")]))
    first = await changes_of(stream, 3)
    assert [(c.revision, c.kind) for c in first] == [
        (1, K.REGISTRY_CHANGE_KIND_NODE_ONLINE),
        (2, K.REGISTRY_CHANGE_KIND_FLOW_ADDED),
        (3, K.REGISTRY_CHANGE_KIND_FLOW_ADDED),
    ]
    assert first[0].node.node_id == "node-a" and not first[0].node.flows
    assert first[1].flow.name == "hello" and first[1].flow.node_id == "node-a"
    call.cancel()  # the client goes away ...

    # ... and misses a re-registration and an expiry.
    await a.RegisterNode(register_request("node-a", [flow_pb("hello", version="2")]))
    clock.advance(31)
    assert await daemon.registry.sweep() == ["node-a"]

    call = reader.WatchRegistry(pb.WatchRegistryRequest(after_revision=first[-1].revision))
    stream = aiter(call)
    assert (await anext(stream)).created
    missed = await changes_of(stream, 3)
    assert [(c.revision, c.kind) for c in missed] == [
        (4, K.REGISTRY_CHANGE_KIND_FLOW_REMOVED),
        (5, K.REGISTRY_CHANGE_KIND_FLOW_UPDATED),
        (6, K.REGISTRY_CHANGE_KIND_NODE_OFFLINE),
    ]
    assert missed[0].flow.name == "search"
    assert missed[1].flow.version == "2"
    assert missed[2].node.state == OFFLINE

    # Live again: a heartbeat brings the node back.
    await a.Heartbeat(pb.HeartbeatRequest(node_id="node-a"))
    (back,) = await changes_of(stream, 1)
    assert (back.revision, back.kind, back.node.state) == (
        7,
        K.REGISTRY_CHANGE_KIND_NODE_ONLINE,
        ONLINE,
    )
    call.cancel()


async def test_watch_refuses_revisions_it_cannot_serve(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry(change_retention=2)
    reader = connect(daemon, pki.user())
    await connect(daemon, pki.node("a")).RegisterNode(
        register_request("a", [flow_pb("x"), flow_pb("y"), flow_pb("z")])
    )
    await daemon.registry.sweep()  # 4 changes: compacts through revision 2
    behind = await failure(
        anext(aiter(reader.WatchRegistry(pb.WatchRegistryRequest(after_revision=1))))
    )
    assert behind.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(behind)[0] == "REVISION_COMPACTED"
    ahead = await failure(
        anext(aiter(reader.WatchRegistry(pb.WatchRegistryRequest(after_revision=99))))
    )
    assert ahead.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(ahead)[0] == "REVISION_IN_FUTURE"


async def test_a_node_cannot_write_another_nodes_entry(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    a, b = connect(daemon, pki.node("node-a")), connect(daemon, pki.node("node-b"))
    await a.RegisterNode(register_request("node-a"))
    for call in (
        b.RegisterNode(register_request("node-a")),
        b.Heartbeat(pb.HeartbeatRequest(node_id="node-a")),
        b.DeregisterNode(pb.DeregisterNodeRequest(node_id="node-a")),
    ):
        error = await failure(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert details_of(error)[0] == "NODE_IDENTITY_MISMATCH"
    reader = connect(daemon, pki.user())
    node = (await reader.GetNode(pb.GetNodeRequest(node_id="node-a"))).node
    assert node.state == ONLINE and node.identity.endswith("/node/node-a")


async def test_clients_only_read_and_flows_get_nothing(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    await connect(daemon, pki.node("node-a")).RegisterNode(register_request("node-a"))
    user = connect(daemon, pki.user("bob"))
    assert len((await user.ListNodes(pb.ListNodesRequest())).nodes) == 1
    for write in (
        user.RegisterNode(register_request("node-a")),
        user.Heartbeat(pb.HeartbeatRequest(node_id="node-a")),
        user.DeregisterNode(pb.DeregisterNodeRequest(node_id="node-a")),
    ):
        assert (await failure(write)).code() == grpc.StatusCode.PERMISSION_DENIED

    flow = connect(daemon, pki.flow("node-a", "hello"))
    for call in (
        flow.ListNodes(pb.ListNodesRequest()),
        flow.GetNode(pb.GetNodeRequest(node_id="node-a")),
        flow.ListFlowOffers(pb.ListFlowOffersRequest()),
        flow.Heartbeat(pb.HeartbeatRequest(node_id="node-a")),
        anext(aiter(flow.WatchRegistry(pb.WatchRegistryRequest()))),
    ):
        assert (await failure(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    async with open_channel(
        daemon.address, pki.flow("node-a", "hello"), expect=ServerExpectation.registry()
    ) as channel:
        error = await failure(
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_requests_name_their_fields(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    a = connect(daemon, pki.node("node-a"))
    error = await failure(a.RegisterNode(register_request("node-a", interval=0.2)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = details_of(error)
    assert reason == "INVALID_ARGUMENT"
    assert [v.field for v in violations] == ["heartbeat_interval"]
    assert "between 1 s and 300 s" in violations[0].description

    await a.RegisterNode(register_request("node-a"))
    error = await failure(
        a.Heartbeat(pb.HeartbeatRequest(node_id="node-a", heartbeat_interval=seconds(301)))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details_of(error)[1]] == ["heartbeat_interval"]

    twice = register_request("node-a", [flow_pb("same"), flow_pb("same")], endpoints=[])
    twice.flows[0].node_id = "node-b"
    error = await failure(a.RegisterNode(twice))
    assert [v.field for v in details_of(error)[1]] == ["flows[0].node_id"]
    twice.flows[0].node_id = ""
    error = await failure(a.RegisterNode(twice))
    assert [v.field for v in details_of(error)[1]] == ["endpoints", "flows[1].name"]


async def test_heartbeat_before_registering_is_not_found(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    error = await failure(
        connect(daemon, pki.node("node-a")).Heartbeat(pb.HeartbeatRequest(node_id="node-a"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(error)[0] == "NODE_NOT_REGISTERED"


async def test_a_foreign_certificate_is_rejected_in_the_handshake(
    start_registry: RegistryFactory, connect: StubFactory, tmp_path: Path
) -> None:
    daemon = await start_registry()
    stranger = make_pki(tmp_path / "stranger", domain="test.kodosumi")
    error = await failure(
        connect(daemon, stranger.user()).ListNodes(pb.ListNodesRequest(), timeout=10)
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_insecure_mode_lets_anyone_write_any_entry(
    start_registry: RegistryFactory, connect: StubFactory
) -> None:
    daemon = await start_registry(insecure=True)
    stub = connect(daemon, None)
    node = (await stub.RegisterNode(register_request("whoever"))).node
    assert node.identity == ""
    await stub.Heartbeat(pb.HeartbeatRequest(node_id="whoever"))
    assert [n.node_id for n in (await stub.ListNodes(pb.ListNodesRequest())).nodes] == ["whoever"]


async def test_a_restarted_registry_does_not_mass_expire_nodes(
    start_registry: RegistryFactory,
    connect: StubFactory,
    pki: Pki,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    state = tmp_path / "restart"
    first = await start_registry(state)
    for name in ("n1", "n2", "n3"):
        await connect(first, pki.node(name)).RegisterNode(
            register_request(name, [flow_pb("hello", "demo")], interval=10)
        )
    await connect(first, pki.node("n3")).DeregisterNode(pb.DeregisterNodeRequest(node_id="n3"))
    revision = first.registry.revision
    await first.stop()

    clock.advance(45)  # longer than any lease (30 s), shorter than the grace (60 s)
    second = await start_registry(state)
    assert second.registry.revision == revision
    assert await second.registry.sweep() == []
    reader = connect(second, pki.user())
    nodes = (await reader.ListNodes(pb.ListNodesRequest())).nodes
    assert [(n.node_id, n.state) for n in nodes] == [("n1", ONLINE), ("n2", ONLINE), ("n3", LEFT)]
    assert [f.name for f in nodes[0].flows] == ["hello"]

    # n1 heartbeats within the grace period; n2 stays silent and expires when the grace ends.
    clock.advance(50)
    await connect(second, pki.node("n1")).Heartbeat(pb.HeartbeatRequest(node_id="n1"))
    assert await second.registry.sweep() == []
    clock.advance(11)
    assert await second.registry.sweep() == ["n2"]
    # Revisions go on from where the first registry stopped.
    call = reader.WatchRegistry(pb.WatchRegistryRequest(after_revision=revision))
    stream = aiter(call)
    assert (await anext(stream)).created
    (offline,) = await changes_of(stream, 1)
    assert (offline.revision, offline.node_id) == (revision + 1, "n2")
    call.cancel()


async def test_stopping_ends_watch_streams_with_unavailable(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    call = connect(daemon, pki.user()).WatchRegistry(pb.WatchRegistryRequest())
    stream = aiter(call)
    assert (await anext(stream)).created
    await daemon.stop(grace=5)
    error = await failure(anext(stream))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_registry_serves_its_own_certificate_for_localhost(
    start_registry: RegistryFactory, pki: Pki
) -> None:
    daemon = await start_registry()
    port = daemon.address.rpartition(":")[2]
    async with open_channel(
        f"localhost:{port}", pki.user(), expect=ServerExpectation.registry()
    ) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        assert (await stub.ListNodes(pb.ListNodesRequest(), timeout=10)).revision == 0


async def test_a_daemon_refuses_a_taken_port(
    start_registry: RegistryFactory, tmp_path: Path
) -> None:
    first = await start_registry()
    second = RegistryDaemon(
        registry_config(tmp_path / "other", None, listen=first.address), run_sweeper=False
    )
    with pytest.raises(ListenError):
        await second.start()
    # Nothing is left held: the same state dir starts fine on another port.
    third = await start_registry(tmp_path / "other", insecure=True)
    assert third.port != first.port


async def test_one_state_dir_serves_one_daemon(start_registry: RegistryFactory) -> None:
    first = await start_registry()
    second = RegistryDaemon(first.config, run_sweeper=False)
    with pytest.raises(StateDirBusy):
        await second.start()
    await first.stop()
    await start_registry(first.config.state_dir)  # released on stop
