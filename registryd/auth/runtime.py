"""The auth provider inside a registry process: its store, the provider, badges, the
registry's own rotating certificate and the enrollment port.

`RegistryDaemon` opens one when it holds the CA key (and `[auth] enabled`), merges its
authorization table into the registry's, lets its provider resolve grants and revocations
for the registry's guard, and serves `AuthService` beside `RegistryService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

import grpc

from kodosumi.audit import AuditLog
from kodosumi.authz import Rule, StaticRoleResolver
from kodosumi.credentials import (
    CertificateRenewer,
    IssuedCertificate,
    LiveTlsMaterial,
    RotatingCredentials,
)
from kodosumi.pki import CertificateAuthority
from kodosumi.rpc.guard import Authenticator
from kodosumi.rpc.server import create_server
from kodosumi.spiffe import SpiffeId
from kodosumi.stream_slots import StreamSlots
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2_grpc
from registryd.auth.badges import BadgeDesk, CaSigner, RegistryFacts
from registryd.auth.host_names import HostNamePolicy
from registryd.auth.issuer import Issuer
from registryd.auth.policy import ENROLLEE, auth_policy, enrollment_policy
from registryd.auth.provider import AuthProvider, AuthSettings
from registryd.auth.service_badges import ServiceBadgeKeeper
from registryd.auth.servicer import AuthServicer, EnrollmentServicer
from registryd.auth.sqlite_store import SqliteAuthStore
from registryd.auth.store import AuthStore
from registryd.clock import Clock
from registryd.config import AuthConfig
from registryd.registry import Registry

log = logging.getLogger(__name__)


def enroll_listen_for(config: AuthConfig, registry_listen: str) -> str:
    """The enrollment port: as configured, else the registry's port + 1 (0 stays 0)."""
    if config.enroll_listen:
        return config.enroll_listen
    host, _, port = registry_listen.rpartition(":")
    number = int(port or 0)
    return f"{host}:{number + 1 if number else 0}"


class AuthRuntime:
    def __init__(
        self,
        config: AuthConfig,
        store: AuthStore,
        provider: AuthProvider,
        credentials: RotatingCredentials,
        identity: SpiffeId,
    ) -> None:
        self.config = config
        self.store = store
        self.provider = provider
        self.credentials = credentials
        self.identity = identity
        self.badges: BadgeDesk | None = None
        # Service-level badges from measured service (registryd/auth/service_badges.py).
        self.service_badges: ServiceBadgeKeeper | None = None
        self.renewer = CertificateRenewer(credentials, self._renew_own)
        self.enroll_port = 0
        self._enroll_server: grpc.aio.Server | None = None
        self._renewal: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        config: AuthConfig,
        ca: CertificateAuthority,
        material: TlsMaterial,
        identity: SpiffeId,
        database: Path,
        clock: Clock,
        extra_admins: tuple[str, ...] = (),
    ) -> AuthRuntime:
        store = await SqliteAuthStore.open(database)
        try:
            settings = AuthSettings(
                certificate_lifetime=config.certificate_lifetime,
                token_lifetime=config.token_lifetime,
                grants_cache_seconds=config.grants_cache_seconds,
                admins=config.admins + extra_admins,
                host_names=HostNamePolicy(config.allowed_dns, config.allowed_ips),
            )
            provider = AuthProvider(store, Issuer(ca, store), clock, settings)
            await provider.start()
        except BaseException:
            await store.close()
            raise
        return cls(config, store, provider, RotatingCredentials(material), identity)

    @property
    def policy(self) -> dict[str, Rule]:
        return auth_policy()

    def tls(self) -> LiveTlsMaterial:
        """The registry's own credentials, renewed in-process (servers pick them up live)."""
        return self.credentials.live()

    def add_to(
        self, server: grpc.aio.Server, registry: Registry, streams: StreamSlots | None = None
    ) -> None:
        ca = self.provider.issuer.ca
        signer = CaSigner(ca.trust_domain, ca.key)
        self.badges = BadgeDesk(self.store, signer, RegistryFacts(registry), self.provider.clock)
        self.service_badges = ServiceBadgeKeeper(self.store, signer, registry)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(self.provider, self.badges, streams), server
        )

    async def _renew_own(self, csr: bytes) -> IssuedCertificate:
        issued = await self.provider.issuer.issue(
            self.identity,
            csr,
            now=self.provider.clock.now(),
            lifetime=self.config.certificate_lifetime,
        )
        return IssuedCertificate(issued.cert_pem, issued.ca_pem)

    async def start(
        self,
        registry_listen: str,
        registry_address: str,
        audit: AuditLog | None = None,
        advertise: tuple[str, ...] = (),
    ) -> None:
        """Serve the enrollment port, name the addresses in tokens, keep our cert fresh."""
        server = create_server(
            enrollment_policy(),
            Authenticator(
                trust_domain=None,
                roles=StaticRoleResolver(),
                insecure_roles=frozenset({ENROLLEE}),
            ),
            audit=audit,
        )
        auth_pb2_grpc.add_EnrollmentServiceServicer_to_server(
            EnrollmentServicer(self.provider), server
        )
        listen = enroll_listen_for(self.config, registry_listen)
        credentials = self.credentials.server_credentials(
            require_client_auth=False, chain_with_ca=True
        )
        try:
            self.enroll_port = server.add_secure_port(listen, credentials)
        except RuntimeError:
            self.enroll_port = 0
        host = registry_address.rpartition(":")[0]
        enroll_address = ""
        if self.enroll_port:
            await server.start()
            self._enroll_server = server
            enroll_address = self.config.enroll_advertise or f"{host}:{self.enroll_port}"
        else:
            # The registry serves on; only new enrollments wait for a free enrollment port.
            log.error("auth provider: cannot listen on %s: no enrollment until restarted", listen)
        self.provider.settings = replace(
            self.provider.settings,
            enroll_address=enroll_address,
            registry_address=self.config.registry_advertise or registry_address,
            registry_id=self.identity.name,
            # Tokens carry every address the registry advertises (issue 12).
            registry_addresses=tuple(
                dict.fromkeys((self.config.registry_advertise or registry_address, *advertise))
            ),
        )
        self._renewal = asyncio.get_running_loop().create_task(
            self.renewer.run(), name="registry-certificate-renewal"
        )
        if enroll_address:
            log.info("auth provider: enrollment on %s", enroll_address)

    async def close(self, grace: float = 0.0) -> None:
        self.provider.close()
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if self._enroll_server is not None:
            await self._enroll_server.stop(grace)
        await self.store.close()
