"""Fixtures for registry tests: a throwaway PKI in tmp_path, real registry daemons on
127.0.0.1:0 with mTLS (SQLite in tmp_path, a ManualClock, no background sweeper) and clients
holding certificates of that PKI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import registry_pb2_grpc
from registryd.clock import ManualClock
from registryd.config import LeaseConfig, RegistryConfig, TlsConfig
from registryd.daemon import RegistryDaemon
from tests.registry.helpers import DOMAIN


@dataclass(frozen=True)
class Pki:
    """A CA of its own trust domain; issues client certificates on demand."""

    ca: CertificateAuthority
    ca_cert: Path
    ca_key: Path

    def material(self, identity: SpiffeId) -> TlsMaterial:
        cert, key = self.ca.issue(identity)
        return TlsMaterial(cert_pem(self.ca.cert), cert_pem(cert), key_pem(key))

    def node(self, node_id: str) -> TlsMaterial:
        return self.material(SpiffeId.node(self.ca.trust_domain, node_id))

    def user(self, name: str = "alice") -> TlsMaterial:
        return self.material(SpiffeId.user(self.ca.trust_domain, name))

    def flow(self, node_id: str, flow: str) -> TlsMaterial:
        return self.material(SpiffeId.flow(self.ca.trust_domain, node_id, flow))


def make_pki(folder: Path, domain: str = DOMAIN) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "ca.pem", folder / "ca.key"
    return Pki(CertificateAuthority.create(domain, ca_cert, ca_key), ca_cert, ca_key)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def registry_config(state_dir: Path, pki: Pki | None, **changes: Any) -> RegistryConfig:
    config = RegistryConfig(
        registry_id="test-registry",
        listen="127.0.0.1:0",
        state_dir=state_dir,
        insecure=pki is None,
        shutdown_grace=0.5,
        lease=LeaseConfig(restart_grace=60.0),
        tls=TlsConfig(ca_cert=pki.ca_cert, ca_key=pki.ca_key) if pki else TlsConfig(),
    )
    return replace(config, **changes)


RegistryFactory = Callable[..., Awaitable[RegistryDaemon]]


@pytest.fixture
async def start_registry(
    tmp_path: Path, pki: Pki, clock: ManualClock
) -> AsyncIterator[RegistryFactory]:
    """Start registry daemons on demand; every one still running stops at the end."""
    started: list[RegistryDaemon] = []

    async def start(
        state_dir: Path | None = None, *, insecure: bool = False, **changes: Any
    ) -> RegistryDaemon:
        daemon = RegistryDaemon(
            registry_config(
                state_dir or tmp_path / "registry", None if insecure else pki, **changes
            ),
            clock=clock,
            run_sweeper=False,
        )
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        await daemon.stop(grace=0)


# The async stub class exists for type checkers only (the runtime stub serves both).
StubFactory = Callable[
    [RegistryDaemon, TlsMaterial | None], "registry_pb2_grpc.RegistryServiceAsyncStub"
]


@pytest.fixture
async def connect() -> AsyncIterator[StubFactory]:
    """A RegistryService stub for a daemon, holding the given credentials (None: plaintext)."""
    channels: list[grpc.aio.Channel] = []

    def stub(
        daemon: RegistryDaemon, tls: TlsMaterial | None
    ) -> registry_pb2_grpc.RegistryServiceAsyncStub:
        channel = open_channel(daemon.address, tls, expect=ServerExpectation.registry())
        channels.append(channel)
        return registry_pb2_grpc.RegistryServiceStub(channel)

    yield stub
    for channel in channels:
        await channel.close()
