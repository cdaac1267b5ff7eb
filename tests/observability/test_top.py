"""`koco top`: one frame of the node dashboard (and the network view) from a real node, and
rates from two readings of the node's counters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from rich.console import Console

from kodoclient.cli import main
from kodoclient.cli.top import Snapshot, dashboard, rates
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually, launch
from tests.observability.conftest import Telemetry
from tests.peers.conftest import Cluster


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


def test_rates_come_from_two_readings_of_the_counters() -> None:
    def reading(at: float, started: int, failed: int, events: int) -> Snapshot:
        load = node_pb2.NodeLoad(
            executions_started=started, executions_failed=failed, events_stored=events
        )
        return Snapshot(at, node_pb2.NodeInfo(node_id="n", load=load), [], [])

    first, second = reading(10.0, 5, 1, 100), reading(12.0, 7, 2, 1100)
    assert rates(None, first) == {}
    got = rates(first, second)
    assert got["launched_per_min"] == 60.0 and got["failed_per_min"] == 30.0
    assert got["events_per_s"] == 500.0


def test_the_dashboard_shows_network_executions_and_alerts() -> None:
    node = node_pb2.NodeInfo(node_id="node-a", version="0.1.0", endpoints=["127.0.0.1:7470"])
    node.load.running_executions = 2
    running = flow_pb2.Execution(execution_id="e1", flow="search", status=3, owner="x/user/ada")
    alert = event_pb2.Event(seq=4, execution_id="e0", time_unix_nano=1_700_000_000_000_000_000)
    alert.alert.rule, alert.alert.message = "failed", "execution e0 of flow search failed"
    peers = [
        rpb.RegisteredNode(node_id="node-a", state=rpb.REGISTERED_NODE_STATE_ONLINE),
        rpb.RegisteredNode(node_id="node-b", state=rpb.REGISTERED_NODE_STATE_OFFLINE),
    ]
    snapshot = Snapshot(1.0, node, [running], [alert], network=peers)
    snapshot.rates = {"events_per_s": 12.5, "launched_per_min": 3.0}
    console = Console(width=140, record=True, color_system=None)
    console.print(dashboard(snapshot))
    text = console.export_text()
    for expected in ("node-a", "node-b", "OFFLINE", "1 of 2 nodes online", "search", "e1"):
        assert expected in text
    assert "12.5/s" in text and "failed" in text and "execution e0" in text


async def test_one_frame_of_a_real_node(telemetry: Telemetry, nodes: Any) -> None:
    node = await nodes(node_id="top-node")
    await collect(node.flows, await launch(node.flows, "fails"))
    waiting = await launch(node.flows, "asks")

    async def alert_stored() -> bool:
        return node.app.observability.log.last_seq >= 1

    await eventually(alert_stored, timeout=15)
    frame = await koco(node, "top", "--once")
    assert frame.exit_code == 0, frame.output
    for expected in ("top-node", "executions", waiting, "asks", "execution_failed"):
        assert expected in frame.output

    data = json.loads((await koco(node, "--json", "top")).output)
    assert data["node"]["node_id"] == "top-node"
    assert int(data["node"]["load"]["executions_failed"]) == 1
    assert [e["execution_id"] for e in data["executions"]] == [waiting]
    assert data["alerts"][0]["alert"]["kind"] == "execution_failed"


async def test_the_network_view_shows_peers_and_the_registry(
    telemetry: Telemetry, cluster: Cluster, tmp_path: Path
) -> None:
    registry = await cluster.registry()
    a = await cluster.node("node-a", (), registry=registry)
    await cluster.node("node-b", (), registry=registry)

    async def b_is_a_peer() -> bool:
        assert a.network is not None
        peer = a.network.table.get("node-b")
        return peer is not None and peer.registry_state == "ONLINE"

    await eventually(b_is_a_peer, timeout=15)
    alice = cluster.pki.user("alice")
    files = {"ca": alice.ca_cert, "cert": alice.cert, "key": alice.key}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    options = [f"--{name}={tmp_path / f'{name}.pem'}" for name in files]
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        [
            *("--node", a.address, *options),
            *("top", "--once", "--network", "--registry", registry.address),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "2 of 2 nodes online" in result.output  # the registry's view
    assert "peers of node-a" in result.output and "node-b" in result.output  # the node's
    # Alice is a plain user: the operator stream is not hers.
    assert "alerts are for operators and admins" in result.output

    # The registry's own metrics: nodes by state, and how late each heartbeat is.
    assert registry.metrics is not None
    await registry.metrics.refresh()
    assert registry.metrics.by_state["online"] == 2
    assert set(registry.metrics.lag) == {"node-a", "node-b"}
    # What the observable gauge reports (read from the callback: which meter provider the
    # registry's meter comes from depends on the tests that ran before in this process).
    observed = {o.attributes["state"]: o.value for o in registry.metrics.observe_nodes()}
    assert observed["online"] == 2
