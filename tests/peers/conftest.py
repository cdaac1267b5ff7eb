"""Fixtures for the peer tests: one throwaway CA in tmp_path whose certificates both daemons
use (the registry via `--ca-cert/--ca-key`, nodes via `NodeConfig.tls`), a real registryd
in-process, real nodes sharing the session's Ray, and clients holding user certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.pki import cert_pem, key_pem, write_private, write_public
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import flow_pb2_grpc, node_pb2_grpc, registry_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.config import (
    DiscoveryConfig,
    FlowEntry,
    PeersConfig,
    RegistryClientConfig,
    TlsPaths,
)
from registryd.daemon import RegistryDaemon
from tests.node.conftest import node_config, ray_cluster  # noqa: F401  (a fixture)
from tests.registry.conftest import Pki, make_pki, registry_config

# Fast loops for tests: the registry's smallest heartbeat interval, short backoff and grace.
REGISTRY_LINK = RegistryClientConfig(
    heartbeat_interval=1.0, retry_initial_seconds=0.1, retry_max_seconds=0.5
)
PEERS = PeersConfig(health_interval_seconds=0.5, call_timeout_seconds=3.0, relay_grace_seconds=3)
LOOPBACK_LAN = DiscoveryConfig(enabled=True, interfaces=("127.0.0.1",))
NO_LAN = DiscoveryConfig(enabled=False)


@dataclass(frozen=True)
class PeerPki:
    pki: Pki
    folder: Path

    @property
    def domain(self) -> str:
        return self.pki.ca.trust_domain

    def node_tls(self, node_id: str) -> TlsPaths:
        """Files for a node: its certificate names 127.0.0.1, where peers dial it."""
        cert, key = self.pki.ca.issue(
            SpiffeId.node(self.domain, node_id),
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
        )
        paths = TlsPaths(
            self.pki.ca_cert, self.folder / f"{node_id}.pem", self.folder / f"{node_id}.key"
        )
        write_public(paths.cert, cert_pem(cert))
        write_private(paths.key, key_pem(key))
        return paths

    def user(self, name: str = "alice") -> TlsMaterial:
        return self.pki.user(name)

    def node(self, node_id: str) -> TlsMaterial:
        return self.pki.node(node_id)


def peer_pki(folder: Path) -> PeerPki:
    return PeerPki(make_pki(folder), folder)


class Client:
    """A user (or any identity) talking to one daemon."""

    def __init__(self, address: str, tls: TlsMaterial, expect: ServerExpectation) -> None:
        self.channel = open_channel(address, tls, expect=expect)
        self.flows: flow_pb2_grpc.FlowServiceAsyncStub = flow_pb2_grpc.FlowServiceStub(  # type: ignore[assignment]
            self.channel
        )
        self.node: node_pb2_grpc.NodeServiceAsyncStub = node_pb2_grpc.NodeServiceStub(  # type: ignore[assignment]
            self.channel
        )
        self.registry: registry_pb2_grpc.RegistryServiceAsyncStub = (
            registry_pb2_grpc.RegistryServiceStub(self.channel)  # type: ignore[assignment]
        )

    async def close(self) -> None:
        await self.channel.close()


class Cluster:
    """Registries, nodes and clients of one test (or module); all stopped at the end."""

    def __init__(self, pki: PeerPki, folder: Path) -> None:
        self.pki = pki
        self.folder = folder
        self.registries: list[RegistryDaemon] = []
        self.nodes: list[NodeApp] = []
        self.clients: list[Client] = []

    async def registry(self, name: str = "registry", port: int = 0) -> RegistryDaemon:
        config = registry_config(
            self.folder / name, self.pki.pki, listen=f"127.0.0.1:{port}", shutdown_grace=0.2
        )
        daemon = RegistryDaemon(config)  # the real clock and sweeper: nodes beat in real time
        await daemon.start()
        self.registries.append(daemon)
        return daemon

    async def node(
        self,
        node_id: str,
        flows: tuple[FlowEntry, ...],
        *,
        registry: RegistryDaemon | None = None,
        lan: bool = False,
        **changes: Any,
    ) -> NodeApp:
        config = node_config(
            self.folder / node_id,
            node_id=node_id,
            flows=flows,
            tls=self.pki.node_tls(node_id),
            registry_address=registry.address if registry is not None else "",
            registry=REGISTRY_LINK,
            discovery=LOOPBACK_LAN if lan else NO_LAN,
            peers=PEERS,
        )
        app = NodeApp(replace(config, **changes))
        await app.start()
        self.nodes.append(app)
        return app

    def client(self, address: str, tls: TlsMaterial | None = None) -> Client:
        # Clients check whom they reach: a registry of this cluster, else a node.
        registries = {r.address for r in self.registries}
        expect = ServerExpectation.registry() if address in registries else ServerExpectation.node()
        client = Client(address, tls or self.pki.user(), expect)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        for app in self.nodes:
            if app.store is not None and app.store._db is not None:
                await app.stop()
        for daemon in self.registries:
            await daemon.stop(grace=0)


ClusterFactory = Callable[[], Awaitable[Cluster]]


@pytest.fixture
async def cluster(ray_cluster: None, tmp_path: Path) -> AsyncIterator[Cluster]:  # noqa: F811
    c = Cluster(peer_pki(tmp_path / "pki"), tmp_path)
    yield c
    await c.close()


def rpc_code(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()
