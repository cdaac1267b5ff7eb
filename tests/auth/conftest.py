"""Fixtures for auth tests: a throwaway trust domain in tmp_path, a real registry with its auth
provider on 127.0.0.1:0 (mTLS; enrollment on its own port), spies on the servicers, and
clients enrolled the real way (a one-time token, a CSR, the handshake-fetched CA)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.authz import Principal
from kodosumi.enrollment import EnrollmentToken, enroll
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2_grpc, registry_pb2_grpc
from registryd.auth import runtime as auth_runtime
from registryd.auth.servicer import AuthServicer
from registryd.clock import ManualClock
from registryd.config import AuthConfig
from registryd.daemon import RegistryDaemon
from registryd.servicer import RegistryServicer
from tests.node.conftest import ray_cluster
from tests.registry.conftest import Pki, make_pki, registry_config

__all__ = ["ray_cluster"]  # the session's Ray, for the tests with nodes

DOMAIN = "test.kodosumi"
ADMIN = "root"


class Spy:
    """Records every servicer method that ran (the guard refuses before any of them)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def wrap(self, cls: type[Any]) -> type[Any]:
        spy = self
        methods = {
            name: getattr(cls, name)
            for name in dir(cls)
            if name[:1].isupper() and callable(getattr(cls, name))
        }

        def recorder(name: str, method: Any) -> Any:
            import inspect

            if inspect.isasyncgenfunction(method):

                async def stream(self: Any, *args: Any) -> Any:
                    spy.calls.append(name)
                    async for item in method(self, *args):
                        yield item

                return stream

            async def unary(self: Any, *args: Any) -> Any:
                spy.calls.append(name)
                return await method(self, *args)

            return unary

        return type(
            f"Spied{cls.__name__}",
            (cls,),
            {name: recorder(name, m) for name, m in methods.items()},
        )


@dataclass
class AuthRegistry:
    daemon: RegistryDaemon
    pki: Pki
    spy: Spy
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.daemon.address

    @property
    def provider(self) -> Any:
        assert self.daemon.auth is not None
        return self.daemon.auth.provider

    def channel(self, tls: TlsMaterial | None) -> grpc.aio.Channel:
        channel = open_channel(self.address, tls, expect=ServerExpectation.registry())
        self.channels.append(channel)
        return channel

    def registry(self, tls: TlsMaterial | None) -> Any:
        return registry_pb2_grpc.RegistryServiceStub(self.channel(tls))

    def auth(self, tls: TlsMaterial | None) -> Any:
        return auth_pb2_grpc.AuthServiceStub(self.channel(tls))

    def admin(self) -> TlsMaterial:
        return self.pki.user(ADMIN)

    async def enroll_user(
        self, name: str, roles: tuple[str, ...] = (), groups: tuple[str, ...] = ()
    ) -> TlsMaterial:
        """Create the user (as the admin) and enroll it with its token, the real way."""
        admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin", "user"}))
        _, token = await self.provider.create_user(admin, name, roles, groups)
        return (await enroll(EnrollmentToken.decode(token))).material

    async def node_token(self, node_id: str) -> str:
        admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin", "user"}))
        token, _ = await self.provider.create_token(admin, SpiffeId.node(DOMAIN, node_id))
        return str(token)

    async def enroll_node(self, node_id: str) -> TlsMaterial:
        token = await self.node_token(node_id)
        enrolled = await enroll(
            EnrollmentToken.decode(token), dns_names=("localhost",), ip_addresses=("127.0.0.1",)
        )
        return enrolled.material

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", DOMAIN)


AuthRegistryFactory = Callable[..., Awaitable[AuthRegistry]]


@pytest.fixture
async def start_auth_registry(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AuthRegistryFactory]:
    """Start registries with an auth provider; every servicer call is recorded in `spy`."""
    started: list[AuthRegistry] = []
    spy = Spy()
    monkeypatch.setattr("registryd.daemon.RegistryServicer", spy.wrap(RegistryServicer))
    monkeypatch.setattr(auth_runtime, "AuthServicer", spy.wrap(AuthServicer))

    async def start(**auth: Any) -> AuthRegistry:
        config = registry_config(tmp_path / f"registry-{len(started)}", pki)
        config = replace(config, auth=AuthConfig(admins=(ADMIN,), **auth))
        daemon = RegistryDaemon(config, clock=ManualClock(), run_sweeper=False)
        await daemon.start()
        running = AuthRegistry(daemon, pki, spy)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.close()
        await running.daemon.stop(grace=0)


@pytest.fixture
async def auth_registry(start_auth_registry: AuthRegistryFactory) -> AuthRegistry:
    return await start_auth_registry()
