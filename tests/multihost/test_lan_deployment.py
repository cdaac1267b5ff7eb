"""A registry, two nodes and a laptop on four hosts of a namespace LAN, set up with the
documented commands only, then: enrollment from other hosts, listing, a relayed run, a
partition (a pulled cable) and its heal, and a SIGKILL of the peer mid-relay, each held to
the failure-detection bounds of docs/operations.md (with slack for a busy 2-core machine).

    h1 10.213.0.11  registry host (the CA, `registryd`, the admin alice)
    h2 10.213.0.12  node-a: the example flows
    h3 10.213.0.13  node-b: also a flow node-a lacks (launched through node-a, relayed)
    h4 10.213.0.14  bob's laptop: `koco login`, default node node-a
    h5 10.213.0.15  a Ray worker host (test_ray_cluster.py)

The deployment (`conftest.py`) is shared with `test_ray_cluster.py`, which runs after these.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kodosumi.enrollment import EnrollmentToken
from tests.multihost.deployment import (
    NODE_PORT,
    TICKER_NAME,
    Deployment,
    events_of,
    status_of,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# The bounds of docs/operations.md with the default settings, and slack for a loaded machine.
SLACK = 6.0
PEER_DEAD = 2.0 + 2.0  # health_interval + health_timeout
PEER_LOST_AFTER_CRASH = 2.0  # health_timeout
PEER_LOST_AFTER_CUT = 2.0 + 2.0 + 2.0  # keepalive + keepalive_timeout + health_timeout
REGISTRY_OFFLINE = 3 * 5.0 + 1.0  # ttl_factor x heartbeat_interval + sweep
REGISTRY_ONLINE_AFTER_HEAL = 10.0 + 5.0  # retry_max + call_timeout
PEER_BACK = 2.0 + 2.0  # max(connect_timeout, health_interval) + health_timeout
RELAY_GRACE = 30.0
# A crashed peer's LAN side is forgotten (peer table and zeroconf cache): its checks failed
# lan_forget_seconds, or the registry has it OFFLINE; reconciled every health_interval.
LAN_FORGOTTEN = min(2 * 2.0 + 2.0 + 12.0, REGISTRY_OFFLINE + 2.0)


def laptop_json(deployment: Deployment, command: str) -> list[dict[str, object]]:
    return deployment.laptop.json_lines(f"koco --json {command}")


def peer(deployment: Deployment, node_id: str) -> dict[str, object]:
    return next(p for p in laptop_json(deployment, "peers") if p["node_id"] == node_id)


def registry_state(deployment: Deployment, node_id: str) -> str:
    nodes = laptop_json(deployment, "nodes")
    return str(next(n for n in nodes if n["node_id"] == node_id)["state"])


def test_nodes_enrolled_from_other_hosts_advertise_their_lan_addresses(
    deployment: Deployment,
) -> None:
    # Tokens carry the registry's LAN address, though the admin made them on its host.
    token = EnrollmentToken.decode(deployment.token("node-x", deployment.registry))
    assert token.registry_address == deployment.registry_address
    assert token.enroll_address == f"{deployment.registry.address}:7461"

    nodes = {n["node_id"]: n for n in laptop_json(deployment, "nodes")}
    assert set(nodes) == {"node-a", "node-b"}
    for node_id, machine in (("node-a", deployment.node_a), ("node-b", deployment.node_b)):
        assert str(nodes[node_id]["state"]).endswith("ONLINE")
        assert nodes[node_id]["endpoints"] == [f"{machine.address}:{NODE_PORT}"]

    offers = [o["flow"] for o in laptop_json(deployment, "flows --all")]
    assert [f["node_id"] for f in offers if f["name"] == TICKER_NAME] == ["node-b"]  # type: ignore[index]

    def b_alive() -> bool:
        return str(peer(deployment, "node-b").get("liveness", "")).endswith("ALIVE")

    wait_for(b_alive, "node-a sees node-b alive", 30)
    b = peer(deployment, "node-b")
    # Found both ways: through the registry and by zeroconf across the bridge.
    assert str(b["source"]).endswith("BOTH"), b
    assert f"{deployment.node_b.address}:{NODE_PORT}" in list(b["endpoints"])  # type: ignore[arg-type]


def test_a_run_through_node_a_of_a_flow_only_node_b_offers(deployment: Deployment) -> None:
    events = laptop_json(deployment, f"run {TICKER_NAME} -i count=5 -i interval=0.01")
    events = [e for e in events if "seq" in e]
    assert [int(str(e["seq"])) for e in events] == list(range(1, len(events) + 1))
    assert [status_of(e) for e in events if status_of(e)][-1] == "SUCCEEDED"


def test_the_network_rides_out_a_registry_outage(deployment: Deployment) -> None:
    watcher, out = deployment.laptop.spawn_output("koco watch-registry", "watch-registry")
    log = deployment.laptop.root / "watch-registry"
    wait_for(lambda: "following changes" in log.read_text(errors="replace"), "watching", 30)
    deployment.stop_registry()
    try:
        # The watch says it is reconnecting, again and again, and does not give up ...
        wait_for(
            lambda: log.read_text(errors="replace").count("reconnecting to") >= 3,
            "koco watch-registry reconnecting",
            30,
        )
        # ... while the nodes serve on: a relayed run needs no registry.
        events = laptop_json(deployment, f"run {TICKER_NAME} -i count=3 -i interval=0.01")
        assert [status_of(e) for e in events if status_of(e)][-1] == "SUCCEEDED"
        assert watcher.poll() is None
    finally:
        deployment.start_registry()
    # Connected again: no new reconnect line for two of its longest backoffs (5 s). (It
    # says "reconnected" only once the stream brings something, and nothing changed.)
    seen = {"count": -1, "since": time.monotonic()}

    def settled() -> bool:
        count = log.read_text(errors="replace").count("reconnecting to")
        if count != seen["count"]:
            seen["count"], seen["since"] = count, time.monotonic()
        return time.monotonic() - seen["since"] > 11

    wait_for(settled, "koco watch-registry connected again", 45)
    # The restarted registry kept the nodes (its restart grace): ONLINE, never OFFLINE.
    for node_id in ("node-a", "node-b"):
        assert registry_state(deployment, node_id).endswith("ONLINE")
    assert watcher.poll() is None
    assert "NODE_OFFLINE" not in out.read_text(errors="replace")
    watcher.terminate()
    watcher.wait(10)


def _run_in_background(
    deployment: Deployment, count: int, interval: float, name: str
) -> tuple[object, Path]:
    process, out = deployment.laptop.spawn_output(
        f"koco --json run {TICKER_NAME} -i count={count} -i interval={interval}", name
    )
    wait_for(lambda: len(events_of(out)) >= 5, "the relayed run streams", 60)
    return process, out


def _first(out: Path, status: str) -> dict[str, object] | None:
    return next((e for e in events_of(out) if status_of(e) == status), None)


def _seconds_after(event: dict[str, object], wall: float) -> float:
    return int(str(event["time_unix_nano"])) / 1e9 - wall


def test_a_partition_is_noticed_within_the_bounds_and_heals(deployment: Deployment) -> None:
    process, out = _run_in_background(deployment, 400, 0.1, "partition-run")
    cut = time.time()
    deployment.node_b.host.link(up=False)
    try:
        dead = wait_for(
            lambda: str(peer(deployment, "node-b")["liveness"]).endswith("DEAD"),
            "node-a sees node-b dead",
            PEER_DEAD + SLACK,
        )
        wait_for(lambda: _first(out, "PEER_LOST") is not None, "PEER_LOST", 60)
        lost = _first(out, "PEER_LOST")
        assert lost is not None
        lost_after = _seconds_after(lost, cut)
        assert lost_after <= PEER_LOST_AFTER_CUT + SLACK, lost_after
        assert "node-b" in str(lost["status_changed"])
        offline = wait_for(
            lambda: registry_state(deployment, "node-b").endswith("OFFLINE"),
            "the registry has node-b OFFLINE",
            REGISTRY_OFFLINE + SLACK,
        )
    finally:
        deployment.node_b.host.link(up=True)
    healed = time.time()
    alive = wait_for(
        lambda: str(peer(deployment, "node-b")["liveness"]).endswith("ALIVE"),
        "node-b alive again",
        PEER_BACK + SLACK,
    )
    online = alive + wait_for(
        lambda: registry_state(deployment, "node-b").endswith("ONLINE"),
        "node-b ONLINE again",
        REGISTRY_ONLINE_AFTER_HEAL + SLACK,
    )
    assert process.wait(120) == 0, deployment.laptop.log("partition-run")  # type: ignore[attr-defined]
    events = events_of(out)
    assert [int(str(e["seq"])) for e in events] == list(range(1, len(events) + 1))
    statuses = [status_of(e) for e in events if status_of(e)]
    at = statuses.index("PEER_LOST")
    assert statuses[at + 1] == "RUNNING" and statuses[-1] == "SUCCEEDED", statuses
    assert sum(1 for e in events if "progress" in e) == 400
    back = next(e for e in events if int(str(e["seq"])) == int(str(lost["seq"])) + 1)
    restored = _seconds_after(back, healed)
    assert restored <= PEER_BACK + SLACK, restored
    print(
        f"\npartition: peer dead after {dead:.1f} s, PEER_LOST after {lost_after:.1f} s, "
        f"OFFLINE after {offline + dead:.1f} s; healed: relay back after {restored:.1f} s, "
        f"alive after {alive:.1f} s, ONLINE after {online:.1f} s"
    )


def test_sigkill_of_the_peer_mid_relay_is_peer_lost_at_once_then_failed(
    deployment: Deployment,
) -> None:
    # Known both ways again (after the partition the LAN side was forgotten with the
    # registry's OFFLINE, and asked for until it answered).
    wait_for(
        lambda: str(peer(deployment, "node-b")["source"]).endswith("BOTH"),
        "node-a finds node-b on the LAN again",
        30,
    )
    process, out = _run_in_background(deployment, 1200, 0.05, "sigkill-run")
    killed = time.time()
    os.kill(deployment.processes["node-b"].pid, signal.SIGKILL)
    wait_for(lambda: _first(out, "PEER_LOST") is not None, "PEER_LOST", 60)
    lost = _first(out, "PEER_LOST")
    assert lost is not None
    lost_after = _seconds_after(lost, killed)
    assert lost_after <= PEER_LOST_AFTER_CRASH + SLACK, lost_after
    # mDNS says nothing of the crash: node-a's LAN side forgets node-b (its health checks
    # failed, the registry's lease ran out), and the peer table, zeroconf and the registry
    # agree: known from the registry only, dead, OFFLINE.
    wait_for(
        lambda: str(peer(deployment, "node-b")["source"]).endswith("REGISTRY"),
        "node-a forgets node-b on the LAN",
        LAN_FORGOTTEN + SLACK,
    )
    forgotten_after = time.time() - killed
    b = peer(deployment, "node-b")
    assert str(b["liveness"]).endswith("DEAD"), b
    wait_for(
        lambda: registry_state(deployment, "node-b").endswith("OFFLINE"),
        "the registry has node-b OFFLINE",
        REGISTRY_OFFLINE + SLACK,
    )
    assert process.wait(RELAY_GRACE + 60) != 0  # type: ignore[attr-defined]
    events = events_of(out)
    statuses = [status_of(e) for e in events if status_of(e)]
    assert statuses[-2:] == ["PEER_LOST", "FAILED"], statuses
    failed_after = _seconds_after(events[-1], killed)
    assert RELAY_GRACE <= failed_after <= RELAY_GRACE + PEER_LOST_AFTER_CRASH + SLACK
    assert "node-b" in str(events[-1]["status_changed"])
    print(
        f"\nSIGKILL: PEER_LOST after {lost_after:.1f} s, LAN side forgotten after "
        f"{forgotten_after:.1f} s, FAILED after {failed_after:.1f} s"
    )
