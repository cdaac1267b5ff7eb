"""The peer table: entries merged from the registry and the LAN, where each came from,
liveness from health checks, and which peer a launch would go to."""

from __future__ import annotations

from kodosumi.v1 import flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.network.peers import LanAnnouncement, Liveness, PeerTable, Source, flows_digest


def flow(name: str, node_id: str, *tags: str) -> flow_pb2.Flow:
    return flow_pb2.Flow(name=name, node_id=node_id, tags=list(tags))


def registered(
    node_id: str,
    *flows: str,
    state: int = rpb.REGISTERED_NODE_STATE_ONLINE,
    running: int = 0,
) -> rpb.RegisteredNode:
    return rpb.RegisteredNode(
        node_id=node_id,
        identity=f"spiffe://test.kodosumi/node/{node_id}",
        endpoints=[f"{node_id}.example:7470"],
        flows=[flow(f, node_id) for f in flows],
        version="0.1.0",
        state=state,  # type: ignore[arg-type]
        load=node_pb2.NodeLoad(running_executions=running),
    )


def lan(node_id: str, digest: str = "d1") -> LanAnnouncement:
    return LanAnnouncement(node_id, (f"127.0.0.1:{len(node_id)}",), flows_digest=digest)


def test_sources_merge_into_one_entry_that_says_where_it_came_from() -> None:
    table = PeerTable("self")
    table.registry_reset([registered("b", "search")])
    assert table.get("b").source is Source.REGISTRY  # type: ignore[union-attr]
    table.lan_seen(lan("b"))
    peer = table.get("b")
    assert peer is not None and peer.source is Source.BOTH
    assert peer.endpoints == ("b.example:7470", "127.0.0.1:1")
    table.registry_reset([])  # the registry forgot it; the LAN still sees it
    assert table.get("b").source is Source.LAN  # type: ignore[union-attr]
    table.lan_gone("b")
    assert table.get("b") is None and len(table) == 0


def test_the_node_itself_is_never_a_peer() -> None:
    table = PeerTable("self")
    table.registry_reset([registered("self", "x")])
    table.lan_seen(lan("self"))
    assert len(table) == 0


def test_registry_changes_update_state_and_flows() -> None:
    table = PeerTable("self")
    table.registry_node(registered("b"))
    table.registry_flow(flow("search", "b"))
    table.registry_flow(flow("write", "b"))
    table.registry_flow(flow("search", "b"), removed=True)
    peer = table.get("b")
    assert peer is not None and set(peer.flows) == {"write"}
    table.registry_node(registered("b", state=rpb.REGISTERED_NODE_STATE_OFFLINE))
    assert peer.registry_state == "OFFLINE" and not peer.routable
    table.registry_flow(flow("orphan", "unknown-node"))  # ignored: no such registry entry
    assert table.get("unknown-node") is None


def test_health_checks_decide_liveness_over_what_the_sources_say() -> None:
    table = PeerTable("self")
    table.registry_reset([registered("b", "search")])
    peer = table.get("b")
    assert peer is not None and peer.liveness is Liveness.UNKNOWN and peer.routable
    table.checked("b", alive=False, reason="UNAVAILABLE", at=1.0, endpoint="")
    assert not peer.routable and table.candidates("search") == []
    table.checked("b", alive=True, reason="serving", at=2.0, endpoint="10.0.0.2:7470")
    assert peer.routable and peer.endpoints[0] == "10.0.0.2:7470"
    # Alive but deregistered on purpose: not a launch target.
    table.registry_node(registered("b", state=rpb.REGISTERED_NODE_STATE_LEFT))
    assert not peer.routable


def test_candidates_prefer_checked_then_least_busy_peers() -> None:
    table = PeerTable("self")
    table.registry_reset(
        [
            registered("busy", "search", running=9),
            registered("idle", "search", running=0),
            registered("fresh", "search", running=0),
        ]
    )
    for node_id in ("busy", "idle"):
        table.checked(node_id, alive=True, reason="", at=1.0, endpoint="")
    assert [p.node_id for p in table.candidates("search")] == ["idle", "busy", "fresh"]


def test_remote_flows_name_the_peer_and_skip_local_names() -> None:
    table = PeerTable("self")
    table.registry_reset([registered("b", "search", "hello"), registered("c", "write")])
    table.get("c").registry_flows["write"].tags.append("demo")  # type: ignore[union-attr]
    flows = table.remote_flows(exclude=["hello"])
    assert [(f.name, f.node_id) for f in flows] == [("search", "b"), ("write", "c")]
    assert [f.name for f in table.remote_flows("demo")] == ["write"]
    assert table.remote_flow("nope") is None


def test_lan_peers_need_their_node_info_until_the_digest_matches() -> None:
    table = PeerTable("self")
    info = node_pb2.NodeInfo(node_id="b", flows=[flow("search", "b")])
    table.lan_seen(lan("b", digest=flows_digest(info.flows)))
    peer = table.get("b")
    assert peer is not None and peer.needs_node_info and peer.flows == {}
    table.node_info("b", info)
    assert not peer.needs_node_info and set(peer.flows) == {"search"}
    table.lan_seen(lan("b", digest="changed"))
    assert peer.needs_node_info


def _fail(table: PeerTable, node_id: str, at: float) -> None:
    table.checked(node_id, alive=False, reason="refused", at=at, endpoint="")


def test_a_dead_lan_peer_is_stale_after_the_forget_time_or_once_the_registry_agrees() -> None:
    table = PeerTable("self")
    table.lan_seen(lan("lan-only"))
    table.lan_seen(lan("both"))
    table.registry_reset([registered("both")])
    for node_id in ("lan-only", "both"):
        table.checked(node_id, alive=True, reason="serving", at=1.0, endpoint="x")
    assert table.lan_stale(now=100.0, forget_after=10.0) == []  # alive: never stale

    _fail(table, "lan-only", 10.0)
    _fail(table, "lan-only", 12.0)  # still failing: dead since the first failure
    _fail(table, "both", 10.0)
    assert table.get("lan-only").dead_since == 10.0  # type: ignore[union-attr]
    assert table.lan_stale(now=19.9, forget_after=10.0) == []
    assert table.lan_stale(now=20.0, forget_after=10.0) == ["both", "lan-only"]

    # The registry's lease ran out: its word and the failed checks suffice at once.
    table.registry_node(registered("both", state=rpb.REGISTERED_NODE_STATE_OFFLINE))
    assert table.lan_stale(now=10.5, forget_after=10.0) == ["both"]

    # Forgetting the LAN side drops a LAN-only peer; a registry one stays, from the registry.
    for node_id in table.lan_stale(now=20.0, forget_after=10.0):
        table.lan_gone(node_id)
    assert table.get("lan-only") is None
    both = table.get("both")
    assert both is not None and both.source is Source.REGISTRY and not both.routable


def test_a_peer_announced_anew_is_checked_afresh_not_forgotten_again() -> None:
    table = PeerTable("self")
    table.registry_reset([registered("b")])
    table.lan_seen(lan("b"))
    _fail(table, "b", 1.0)
    table.lan_gone("b")  # forgotten on the LAN side; the registry still lists it
    table.lan_seen(lan("b"))  # it restarted and announced itself
    b = table.get("b")
    assert b is not None and b.liveness is Liveness.UNKNOWN and b.dead_since == 0.0
    assert table.lan_stale(now=1000.0, forget_after=10.0) == []
    table.checked("b", alive=True, reason="serving", at=2.0, endpoint="x")
    assert b.routable and b.dead_since == 0.0
