"""zeroconf LAN discovery on 127.0.0.1 only: between processes, merged with the registry,
and judged by health checks (mDNS says who exists, not who answers)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from zeroconf import InterfaceChoice

from kodosumi.v1 import flow_pb2
from kodosumid.network.discovery import (
    MAX_FORGOTTEN,
    SERVICE_TYPE,
    LanDiscovery,
    interfaces_for,
)
from kodosumid.network.peers import Liveness, Source
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import eventually
from tests.peers.conftest import PEERS, Cluster

REPO = Path(__file__).resolve().parents[2]
HELPER_PORT = 9  # "discard": nothing of ours listens there, so health checks fail


class Helper:
    """`tests.peers.lan_helper` in a process of its own; its JSON lines are read on demand."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_event(self, event: str, *, timeout: float = 15, **fields: Any) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the helper printed no {event} {fields} in {timeout} s")
            line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            if not line:
                raise AssertionError("the helper exited")
            data = json.loads(line)
            if data["event"] == event and all(data.get(k) == v for k, v in fields.items()):
                return dict(data)


@pytest.fixture
async def helper() -> AsyncIterator[Helper]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peers.lan_helper",
        "lan-helper",
        str(HELPER_PORT),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    h = Helper(process)
    await h.next_event("started")
    yield h
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_a_node_and_another_process_find_each_other_and_goodbye_removes_it(
    cluster: Cluster, helper: Helper
) -> None:
    app = await cluster.node("node-a", TEST_FLOWS[:1], lan=True)
    assert app.network is not None
    table = app.network.table

    # The other process sees the node's advertisement ...
    seen = await helper.next_event("seen", node_id="node-a")
    assert seen["endpoints"] == [f"127.0.0.1:{app.port}"]

    # ... and the node sees the other process, as a LAN peer, which its health checks find
    # dead (nothing answers at the advertised port).
    async def helper_checked() -> bool:
        peer = table.get("lan-helper")
        return peer is not None and peer.liveness is not Liveness.UNKNOWN

    await eventually(helper_checked, timeout=15)
    peer = table.get("lan-helper")
    assert peer is not None and peer.source is Source.LAN
    assert peer.endpoints == (f"127.0.0.1:{HELPER_PORT}",)
    assert peer.version == "helper" and peer.lan is not None and peer.lan.flows_digest == "f00d"
    assert peer.liveness is Liveness.DEAD and not peer.routable

    # A clean stop says goodbye: the peer leaves the table at once.
    helper.process.send_signal(signal.SIGTERM)
    await helper.next_event("stopped")

    async def gone() -> bool:
        return table.get("lan-helper") is None

    await eventually(gone, timeout=10)


async def test_registry_and_lan_entries_merge_and_a_leaving_node_is_no_target(
    cluster: Cluster,
) -> None:
    registry = await cluster.registry()
    hello = [f for f in TEST_FLOWS if f.name == "hello"]
    sleepy = [f for f in TEST_FLOWS if f.name == "sleepy"]
    a = await cluster.node("node-a", tuple(hello), registry=registry, lan=True)
    b = await cluster.node("node-b", tuple(sleepy), registry=registry, lan=True)
    assert a.network is not None
    table = a.network.table

    async def merged() -> bool:
        peer = table.get("node-b")
        return (
            peer is not None
            and peer.source is Source.BOTH
            and peer.liveness is Liveness.ALIVE
            and peer.node_flows is not None  # fetched from B itself (its LAN digest)
        )

    await eventually(merged, timeout=20)
    listed = await cluster.client(a.address).flows.ListFlows(flow_pb2.ListFlowsRequest(), timeout=5)
    assert {f.name: f.node_id for f in listed.flows} == {"hello": "node-a", "sleepy": "node-b"}

    await b.stop()  # deregisters (LEFT) and says goodbye on the LAN

    async def left() -> bool:
        peer = table.get("node-b")
        return peer is not None and peer.source is Source.REGISTRY and peer.registry_state == "LEFT"

    await eventually(left, timeout=10)
    assert table.candidates("sleepy") == []


async def _live_helper(cluster: Cluster, node_id: str) -> Helper:
    """A LAN-only peer that answers health checks (mTLS, a node certificate of the cluster)."""
    tls = cluster.pki.node_tls(node_id)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tests.peers.lan_helper", node_id, "0"),
        *(str(tls.ca_cert), str(tls.cert), str(tls.key)),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    h = Helper(process)
    await h.next_event("started")
    return h


async def test_a_crashed_lan_only_peer_is_dead_then_forgotten_then_found_again(
    cluster: Cluster,
) -> None:
    forget = 2.0
    peers = replace(PEERS, lan_forget_seconds=forget)
    app = await cluster.node("node-a", TEST_FLOWS[:1], lan=True, peers=peers)
    assert app.network is not None and app.network.discovery is not None
    table, discovery = app.network.table, app.network.discovery
    # What docs/operations.md states: dead within interval + timeout, forgotten by the LAN
    # side (peer table and mDNS cache) within 2 x interval + timeout + lan_forget_seconds.
    dead_bound = peers.health_interval_seconds + peers.health_timeout_seconds
    gone_bound = dead_bound + peers.health_interval_seconds + forget
    slack = 3.0

    def liveness() -> Liveness | None:
        peer = table.get("lan-peer")
        return peer.liveness if peer is not None else None

    helpers = [await _live_helper(cluster, "lan-peer")]
    try:

        async def alive() -> bool:
            return liveness() is Liveness.ALIVE

        await eventually(alive, timeout=15)
        peer = table.get("lan-peer")
        assert peer is not None and peer.source is Source.LAN and peer.routable
        name = f"lan-peer.{SERVICE_TYPE}"
        assert discovery._cached(name)

        # SIGKILL: no goodbye on the LAN; the health checks and the reconcile must tell.
        killed = time.monotonic()
        helpers[0].process.kill()
        await helpers[0].process.wait()

        async def dead() -> bool:
            return liveness() is Liveness.DEAD

        await eventually(dead, timeout=dead_bound + slack)
        dead_after = time.monotonic() - killed

        async def gone() -> bool:
            return table.get("lan-peer") is None

        await eventually(gone, timeout=gone_bound + slack)
        gone_after = time.monotonic() - killed
        assert gone_after <= gone_bound + slack
        assert discovery._cached(name) == []  # zeroconf agrees: nothing of it is cached
        assert table.candidates("anything") == []

        # The peer starts again (same id): its announcement is news, it is found and alive.
        helpers.append(await _live_helper(cluster, "lan-peer"))
        back = time.monotonic()
        await eventually(alive, timeout=15)
        print(
            f"\nLAN-only crash: dead after {dead_after:.1f} s, forgotten after "
            f"{gone_after:.1f} s (bound {gone_bound:.1f} s); found again "
            f"{time.monotonic() - back:.1f} s after its restart"
        )
    finally:
        for h in helpers:
            if h.process.returncode is None:
                h.process.kill()
                await h.process.wait()


def test_discovery_binds_to_the_listen_interface_by_default() -> None:
    assert interfaces_for("127.0.0.1:7470") == ["127.0.0.1"]
    assert interfaces_for("0.0.0.0:7470") is InterfaceChoice.All
    assert interfaces_for("[::]:7470") is InterfaceChoice.All
    assert interfaces_for("localhost:7470") == ["127.0.0.1"]
    assert interfaces_for("0.0.0.0:7470", ("10.1.2.3",)) == ["10.1.2.3"]


async def test_forgetting_a_flood_of_lan_peers_stays_bounded() -> None:
    """Announcements that never answer (a hostile or broken host inventing node ids) are
    forgotten; what is kept to ask for them again is bounded, and stops with discovery."""
    discovery = LanDiscovery(
        node_id="me",
        port=1,
        interfaces=["127.0.0.1"],
        txt=dict,
        on_seen=lambda a: None,
        on_gone=lambda node_id: None,
        ask_again_seconds=0.01,
    )
    for i in range(MAX_FORGOTTEN + 50):
        discovery._names[f"fake-{i}.{SERVICE_TYPE}"] = f"fake-{i}"
        discovery.forget(f"fake-{i}")
    assert discovery._names == {}
    assert len(discovery._forgotten) == MAX_FORGOTTEN
    assert f"fake-{MAX_FORGOTTEN + 49}.{SERVICE_TYPE}" in discovery._forgotten  # newest kept
    discovery.forget("never-seen")  # nothing to forget: no error
    await asyncio.sleep(0.05)  # the asking loop runs (nothing answers: no zeroconf here)
    assert discovery._ask_again is not None and not discovery._ask_again.done()
    await discovery.stop()
    assert discovery._ask_again.done()
