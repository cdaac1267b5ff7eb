"""The read side of the network from a client's seat, without Ray: `kodoclient.registry`
and `koco nodes`, `koco flows --all`, `koco watch-registry` against a real in-process
registryd (mTLS, one throwaway CA; nodes registered by hand with node certificates), and
`NodeService.ListPeers` encoding a peer table.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result

from kodoclient.auth import RegistryTarget
from kodoclient.cli import main
from kodoclient.config import ReconnectPolicy
from kodoclient.errors import KodoclientError
from kodoclient.registry import RegistryClient, RegistryItem, RegistrySnapshot
from kodosumi.pki import cert_pem, key_pem, write_private, write_public
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import node_pb2, registry_pb2_grpc
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.network.peers import LanAnnouncement, PeerTable
from kodosumid.servicers import NodeServicer
from registryd.daemon import RegistryDaemon
from tests.registry.conftest import Pki, make_pki, registry_config
from tests.registry.helpers import eventually, flow_pb, register_request

ONLINE, LEFT = rpb.REGISTERED_NODE_STATE_ONLINE, rpb.REGISTERED_NODE_STATE_LEFT
# The servicer under test reads nothing from its context.
NO_CONTEXT: Any = None
FAST = ReconnectPolicy(initial_backoff=0.05, max_backoff=0.3, max_attempts=40)


@dataclass
class Reg:
    """A registry daemon (restartable on its port), its PKI and a user's credential files."""

    pki: Pki
    folder: Path
    daemon: RegistryDaemon
    user_files: tuple[Path, Path]

    @property
    def address(self) -> str:
        return self.daemon.address

    def user_target(self) -> RegistryTarget:
        return RegistryTarget(self.address, self.pki.user("alice"), 5.0)

    async def register(self, node_id: str, *flows: str, tag: str = "demo") -> None:
        """Register `node_id` with `flows` as the node itself would (its own certificate)."""
        channel = open_channel(
            self.address, self.pki.node(node_id), expect=ServerExpectation.registry()
        )
        try:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            request = register_request(node_id, [flow_pb(f, tag) for f in flows], interval=10)
            await stub.RegisterNode(request, timeout=5)
        finally:
            await channel.close()

    async def deregister(self, node_id: str) -> None:
        channel = open_channel(
            self.address, self.pki.node(node_id), expect=ServerExpectation.registry()
        )
        try:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            await stub.DeregisterNode(
                rpb.DeregisterNodeRequest(node_id=node_id, reason="maintenance"), timeout=5
            )
        finally:
            await channel.close()

    async def restart(self) -> None:
        """Stop the daemon and start it again on the same port and state directory."""
        port = int(self.address.rsplit(":", 1)[1])
        await self.daemon.stop(grace=0)
        self.daemon = await start(self.pki, self.folder, listen=f"127.0.0.1:{port}")

    async def koco(self, *args: str) -> Result:
        """The CLI in a thread (it runs its own event loop) with alice's credentials."""
        cert, key = self.user_files
        options = [
            "--state-dir",
            str(self.folder / "client-state"),
            "--ca",
            str(self.pki.ca_cert),
            "--cert",
            str(cert),
            "--key",
            str(key),
        ]
        return await asyncio.to_thread(
            CliRunner().invoke, main, [*options, *args], catch_exceptions=False
        )


async def start(pki: Pki, folder: Path, **changes: Any) -> RegistryDaemon:
    config = registry_config(folder / "registry", pki, shutdown_grace=0.2, **changes)
    daemon = RegistryDaemon(config)
    await daemon.start()
    return daemon


def user_files(pki: Pki, folder: Path) -> tuple[Path, Path]:
    cert, key = pki.ca.issue(SpiffeId.user(pki.ca.trust_domain, "alice"))
    paths = folder / "alice.pem", folder / "alice.key"
    write_public(paths[0], cert_pem(cert))
    write_private(paths[1], key_pem(key))
    return paths


@pytest.fixture
async def reg(tmp_path: Path) -> AsyncIterator[Reg]:
    pki = make_pki(tmp_path / "pki")
    registry = Reg(pki, tmp_path, await start(pki, tmp_path), user_files(pki, tmp_path))
    yield registry
    await registry.daemon.stop(grace=0)


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# -- the SDK ---------------------------------------------------------------------------------


async def test_client_lists_nodes_gets_one_and_lists_flow_offers(reg: Reg) -> None:
    await reg.register("node-a", "hello")
    await reg.register("node-b", "hello", "ticker", tag="slow")
    await reg.deregister("node-a")
    async with RegistryClient(reg.user_target()) as client:
        everyone = await client.list_nodes()
        assert [n.node_id for n in everyone.nodes] == ["node-a", "node-b"]
        assert everyone.revision > 0
        online = await client.list_nodes(states=["online"])
        assert [n.node_id for n in online.nodes] == ["node-b"]
        assert [n.node_id for n in (await client.list_nodes(flow_name="ticker")).nodes] == [
            "node-b"
        ]
        node = await client.get_node("node-a")
        assert node.state == LEFT and node.state_reason == "maintenance"
        offers = await client.list_flow_offers()
        assert [(o.flow.name, o.flow.node_id) for o in offers] == [
            ("hello", "node-a"),
            ("hello", "node-b"),
            ("ticker", "node-b"),
        ]
        with pytest.raises(KodoclientError) as caught:
            await client.get_node("nobody")
        assert caught.value.code == grpc.StatusCode.NOT_FOUND


async def test_watch_resumes_after_a_registry_restart_without_gaps_or_repeats(
    reg: Reg,
) -> None:
    await reg.register("node-a", "hello")
    seen: list[RegistryItem] = []
    reconnects: list[str] = []

    async def follow() -> None:
        async with RegistryClient(reg.user_target(), reconnect=FAST) as client:
            feed = client.watch_registry(
                0, on_reconnect=lambda a, d, cause: reconnects.append(cause)
            )
            async with aclosing(feed) as items:
                async for item in items:
                    seen.append(item)

    def revisions() -> list[int]:
        return [i.revision for i in seen if isinstance(i, rpb.RegistryChange)]

    task = asyncio.get_running_loop().create_task(follow())
    try:
        await until(lambda: len(revisions()) >= 2)
        before = len(revisions())
        await reg.restart()  # ends the stream with UNAVAILABLE; the watch comes back
        await reg.register("node-b", "ticker")
        await until(lambda: len(revisions()) >= before + 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert reconnects, "the stream should have broken with the restart"
    assert not any(isinstance(i, RegistrySnapshot) for i in seen)
    assert revisions() == list(range(1, len(revisions()) + 1))
    assert {i.node_id for i in seen if isinstance(i, rpb.RegistryChange)} == {"node-a", "node-b"}


async def test_watch_lists_again_when_its_revision_was_compacted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    daemon = await start(pki, tmp_path, change_retention=2)
    reg = Reg(pki, tmp_path, daemon, user_files(pki, tmp_path))
    try:
        for node_id in ("node-a", "node-b", "node-c"):
            await reg.register(node_id, "hello")
        await reg.daemon.registry.sweep()  # compacts the log now rather than within a second
        async with RegistryClient(reg.user_target(), reconnect=FAST) as client:
            latest = (await client.list_nodes()).revision
            items = [i async for i in client.watch_registry(1, follow=False)]
            assert len(items) == 1 and isinstance(items[0], RegistrySnapshot)
            assert items[0].revision == latest
            assert [n.node_id for n in items[0].nodes] == ["node-a", "node-b", "node-c"]
            # Caught up already: nothing to replay after the latest revision.
            assert [i async for i in client.watch_registry(latest, follow=False)] == []
            # A revision the registry never had is the caller's mistake on a first stream.
            with pytest.raises(KodoclientError) as caught:
                [i async for i in client.watch_registry(latest + 100, follow=False)]
            assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.reason == "REVISION_IN_FUTURE"
    finally:
        await reg.daemon.stop(grace=0)


# -- the CLI ---------------------------------------------------------------------------------


async def test_koco_nodes_lists_filters_and_shows_one(reg: Reg) -> None:
    await reg.register("node-a", "hello")
    await reg.register("node-b", "hello", "ticker", tag="slow")
    await reg.deregister("node-a")

    listed = await reg.koco("--json", "nodes", "--registry", reg.address)
    assert listed.exit_code == 0, listed.output
    nodes = lines(listed)
    assert [(n["node_id"], n["state"]) for n in nodes] == [
        ("node-a", "REGISTERED_NODE_STATE_LEFT"),
        ("node-b", "REGISTERED_NODE_STATE_ONLINE"),
    ]
    online = await reg.koco("nodes", "--online", "--json", "--registry", reg.address)
    assert [n["node_id"] for n in lines(online)] == ["node-b"]
    tagged = await reg.koco("--json", "nodes", "--tag", "slow", "--registry", reg.address)
    assert [n["node_id"] for n in lines(tagged)] == ["node-b"]
    by_flow = await reg.koco("--json", "nodes", "--flow", "hello", "--registry", reg.address)
    assert [n["node_id"] for n in lines(by_flow)] == ["node-a", "node-b"]

    table = await reg.koco("nodes", "--registry", reg.address)
    assert table.exit_code == 0, table.output
    assert "node-b" in table.stdout and "ONLINE" in table.stdout and "ticker" in table.stdout

    one = await reg.koco("nodes", "node-a", "--registry", reg.address)
    assert one.exit_code == 0, one.output
    assert "LEFT" in one.stdout and "maintenance" in one.stdout
    missing = await reg.koco("nodes", "nobody", "--registry", reg.address)
    assert missing.exit_code == 3
    assert (await reg.koco("nodes", "node-a", "--online", "--registry", reg.address)).exit_code == 2


async def test_koco_flows_all_lists_one_row_per_node_and_flow(reg: Reg) -> None:
    await reg.register("node-a", "hello")
    await reg.register("node-b", "hello", "ticker", tag="slow")
    result = await reg.koco("--json", "flows", "--all", "--registry", reg.address)
    assert result.exit_code == 0, result.output
    rows = [(o["flow"]["name"], o["flow"]["node_id"], o["node_state"]) for o in lines(result)]
    assert rows == [
        ("hello", "node-a", "REGISTERED_NODE_STATE_ONLINE"),
        ("hello", "node-b", "REGISTERED_NODE_STATE_ONLINE"),
        ("ticker", "node-b", "REGISTERED_NODE_STATE_ONLINE"),
    ]
    tagged = await reg.koco("flows", "--all", "--tag", "slow", "--json", "--registry", reg.address)
    assert [o["flow"]["name"] for o in lines(tagged)] == ["hello", "ticker"]
    table = await reg.koco("flows", "--all", "--registry", reg.address)
    assert table.exit_code == 0, table.output
    assert "ticker" in table.stdout and "node-b" in table.stdout


async def test_koco_watch_registry_replays_after_a_revision_and_relists_when_compacted(
    reg: Reg,
) -> None:
    await reg.register("node-a", "hello")
    everything = await reg.koco(
        "--json", "watch-registry", "--after", "0", "--no-follow", "--registry", reg.address
    )
    assert everything.exit_code == 0, everything.output
    changes = lines(everything)
    assert [int(c["revision"]) for c in changes] == list(range(1, len(changes) + 1))
    assert changes[0]["kind"] == "REGISTRY_CHANGE_KIND_NODE_ONLINE"
    last = int(changes[-1]["revision"])

    # Resume: only what changed after the last revision seen.
    await reg.register("node-b", "ticker")
    rest = await reg.koco(
        "--json", "watch-registry", "--after", str(last), "--no-follow", "--registry", reg.address
    )
    assert rest.exit_code == 0, rest.output
    later = lines(rest)
    assert later and all(int(c["revision"]) > last for c in later)
    assert {c["node_id"] for c in later} == {"node-b"}
    assert {c["kind"] for c in later} == {
        "REGISTRY_CHANGE_KIND_NODE_ONLINE",
        "REGISTRY_CHANGE_KIND_FLOW_ADDED",
    }

    # Without --after it lists first; the human view prints the nodes and then each change.
    listed = await reg.koco("--json", "watch-registry", "--no-follow", "--registry", reg.address)
    assert [list(o) for o in lines(listed)] == [["snapshot"]]
    human = await reg.koco(
        "watch-registry", "--after", str(last), "--no-follow", "--registry", reg.address
    )
    assert (
        "NODE_ONLINE" in human.stdout and "FLOW_ADDED" in human.stdout and "ticker" in human.stdout
    )

    future = await reg.koco("watch-registry", "--after", "999", "--registry", reg.address)
    assert future.exit_code == 2


async def test_koco_watch_registry_relists_a_compacted_revision(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    daemon = await start(pki, tmp_path, change_retention=2)
    reg = Reg(pki, tmp_path, daemon, user_files(pki, tmp_path))
    try:
        for node_id in ("node-a", "node-b"):
            await reg.register(node_id, "hello")
        await reg.daemon.registry.sweep()
        result = await reg.koco(
            "--json", "watch-registry", "--after", "1", "--no-follow", "--registry", reg.address
        )
        assert result.exit_code == 0, result.output
        (snapshot,) = lines(result)
        assert [n["node_id"] for n in snapshot["snapshot"]["nodes"]] == ["node-a", "node-b"]
    finally:
        await reg.daemon.stop(grace=0)


async def test_an_unreachable_registry_exits_4(reg: Reg) -> None:
    await reg.daemon.stop(grace=0)
    result = await reg.koco("--timeout", "1", "nodes", "--registry", reg.address)
    assert result.exit_code == 4


# -- ListPeers encoding ------------------------------------------------------------------------


async def test_list_peers_encodes_the_table_and_is_empty_without_a_network() -> None:
    def info() -> node_pb2.NodeInfo:
        return node_pb2.NodeInfo(node_id="me")

    none = await NodeServicer(info).ListPeers(node_pb2.ListPeersRequest(), NO_CONTEXT)
    assert list(none.peers) == []
    table = PeerTable("me")
    assert (
        list(
            (
                await NodeServicer(info, peers=table).ListPeers(
                    node_pb2.ListPeersRequest(), NO_CONTEXT
                )
            ).peers
        )
        == []
    )

    node = rpb.RegisteredNode(
        node_id="node-b",
        identity="spiffe://test/node/node-b",
        endpoints=["127.0.0.1:7471"],
        flows=[flow_pb("ticker")],
        version="1.2",
        state=ONLINE,
        load=node_pb2.NodeLoad(running_executions=2),
    )
    table.registry_reset([node])
    table.lan_seen(
        LanAnnouncement("node-c", ("127.0.0.1:7472",), identity="spiffe://test/node/node-c")
    )
    table.lan_seen(LanAnnouncement("node-b", ("127.0.0.1:7471",)))
    table.checked("node-c", alive=False, reason="connection refused", at=1.0, endpoint="")
    response = await NodeServicer(info, peers=table).ListPeers(
        node_pb2.ListPeersRequest(), NO_CONTEXT
    )
    b, c = response.peers
    assert (b.node_id, b.source, b.registry_state, b.liveness) == (
        "node-b",
        node_pb2.PEER_SOURCE_BOTH,
        node_pb2.PEER_REGISTRY_STATE_ONLINE,
        node_pb2.PEER_LIVENESS_UNKNOWN,
    )
    assert list(b.flow_names) == ["ticker"] and b.load.running_executions == 2
    assert b.routable and not b.HasField("last_check_time")
    assert (c.source, c.registry_state, c.liveness, c.liveness_reason) == (
        node_pb2.PEER_SOURCE_LAN,
        node_pb2.PEER_REGISTRY_STATE_UNSPECIFIED,
        node_pb2.PEER_LIVENESS_DEAD,
        "connection refused",
    )
    assert c.HasField("last_check_time") and not c.routable


async def until(condition: Callable[[], bool]) -> None:
    """Poll a plain condition (with a deadline, no bare sleep)."""

    async def check() -> bool:
        return condition()

    await eventually(check)
