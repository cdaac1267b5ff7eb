"""The network through the CLI and the SDK, with real nodes: a registryd and two nodes of
one CA (in-process, the session's Ray). Node B offers a flow node A lacks; A's `ListPeers`
shows B as a registry peer, `koco nodes` / `flows --all` read the registry, and `koco run`
against A runs B's flow there, relayed back live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kodoclient import AsyncClient, ConnectConfig
from kodoclient.cli import main
from kodosumi.pki import cert_pem, key_pem, write_private, write_public
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import node_pb2
from kodosumid.app import NodeApp
from kodosumid.network.peers import Liveness
from registryd.daemon import RegistryDaemon
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import eventually
from tests.peers.conftest import Cluster, peer_pki

A_FLOWS = tuple(f for f in TEST_FLOWS if f.name == "hello")
B_FLOWS = tuple(f for f in TEST_FLOWS if f.name in ("hello", "counting"))


@dataclass
class Net:
    cluster: Cluster
    registry: RegistryDaemon
    a: NodeApp
    b: NodeApp
    user_files: tuple[Path, Path, Path]  # ca, cert, key of the user alice

    async def koco(self, *args: str, node: NodeApp | None = None) -> Result:
        """The CLI in a thread (it runs its own event loop), as alice, against node A."""
        ca, cert, key = self.user_files
        options = [
            "--node",
            (node or self.a).address,
            "--state-dir",
            str(self.cluster.folder / "client-state"),
            "--ca",
            str(ca),
            "--cert",
            str(cert),
            "--key",
            str(key),
        ]
        return await asyncio.to_thread(
            CliRunner().invoke, main, [*options, *args], catch_exceptions=False
        )


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
async def net(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    folder = tmp_path_factory.mktemp("cli-network")
    cluster = Cluster(peer_pki(folder / "pki"), folder)
    try:
        registry = await cluster.registry()
        b = await cluster.node("node-b", B_FLOWS, registry=registry)
        a = await cluster.node("node-a", A_FLOWS, registry=registry)
        assert a.network is not None
        table = a.network.table

        async def b_is_alive() -> bool:
            peer = table.get("node-b")
            return peer is not None and peer.liveness is Liveness.ALIVE

        await eventually(b_is_alive, timeout=15)
        pki = cluster.pki.pki
        cert, key = pki.ca.issue(SpiffeId.user(pki.ca.trust_domain, "alice"))
        files = (pki.ca_cert, folder / "alice.pem", folder / "alice.key")
        write_public(files[1], cert_pem(cert))
        write_private(files[2], key_pem(key))
        yield Net(cluster, registry, a, b, files)
    finally:
        await cluster.close()


async def test_list_peers_shows_the_other_node_from_the_registry(net: Net) -> None:
    config = ConnectConfig(target=net.a.address, tls=net.cluster.pki.user())
    async with AsyncClient(config) as client:
        peers = await client.peers()
    assert [p.node_id for p in peers] == ["node-b"]
    (b,) = peers
    assert b.source == node_pb2.PEER_SOURCE_REGISTRY
    assert b.registry_state == node_pb2.PEER_REGISTRY_STATE_ONLINE
    assert b.liveness == node_pb2.PEER_LIVENESS_ALIVE
    assert b.identity == f"spiffe://{net.cluster.pki.domain}/node/node-b"
    assert list(b.flow_names) == ["counting", "hello"]
    assert b.endpoints[0] == net.b.address
    assert b.routable and b.HasField("last_check_time")

    shown = await net.koco("--json", "peers")
    assert shown.exit_code == 0, shown.output
    assert [(p["node_id"], p["source"]) for p in lines(shown)] == [
        ("node-b", "PEER_SOURCE_REGISTRY")
    ]
    table = await net.koco("peers")
    assert "node-b" in table.stdout and "registry" in table.stdout and "alive" in table.stdout


async def test_a_node_without_a_network_has_no_peers(net: Net) -> None:
    # No registry, no LAN: the node knows nobody, though A and B run beside it.
    alone = await net.cluster.node("node-alone", A_FLOWS)
    try:
        empty = await net.koco("--json", "peers", node=alone)
        assert empty.exit_code == 0, empty.output
        assert empty.stdout == ""
    finally:
        await alone.stop()


async def test_koco_nodes_and_flows_all_read_the_registry(net: Net) -> None:
    nodes = await net.koco("--json", "nodes", "--online", "--registry", net.registry.address)
    assert nodes.exit_code == 0, nodes.output
    assert [n["node_id"] for n in lines(nodes)] == ["node-a", "node-b"]
    lacking = await net.koco(
        "--json", "nodes", "--flow", "counting", "--registry", net.registry.address
    )
    assert [n["node_id"] for n in lines(lacking)] == ["node-b"]

    offers = await net.koco("--json", "flows", "--all", "--registry", net.registry.address)
    assert offers.exit_code == 0, offers.output
    assert [(o["flow"]["name"], o["flow"]["node_id"]) for o in lines(offers)] == [
        ("counting", "node-b"),
        ("hello", "node-a"),
        ("hello", "node-b"),
    ]


async def test_koco_run_against_a_runs_the_flow_of_b_relayed_live(net: Net) -> None:
    result = await net.koco("--json", "run", "counting")
    assert result.exit_code == 0, result.output
    events = lines(result)
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status_changed"]["status"] == "EXECUTION_STATUS_SUCCEEDED"
    # A relayed it: the execution ran on B (A records B as its executor), same id on both.
    execution_id = events[0]["execution_id"]
    assert net.a.store is not None and net.b.store is not None
    record = await net.a.store.get_execution(execution_id)
    assert record is not None and record.executor == "peer:node-b"
    assert await net.b.store.get_execution(execution_id) is not None
