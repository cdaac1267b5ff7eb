"""One registry process: the store, the domain, the gRPC server, the lease sweeper and the
`registry.json` that tells local tools where the registry listens.

Tests build a `RegistryDaemon` in-process (with a `ManualClock` and no sweeper) exactly as
`registryd` does from its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from kodosumi.addresses import (
    AdvertiseError,
    advertised_endpoints,
    certificate_hosts,
    check_advertisable,
)
from kodosumi.audit import AuditLog
from kodosumi.authz import StaticRoleResolver
from kodosumi.plaintext import plaintext_refusal
from kodosumi.rpc.guard import Authenticator
from kodosumi.rpc.server import add_health_and_reflection, bind, create_server, set_serving
from kodosumi.spiffe import SpiffeId
from kodosumi.sqlite import private_dir
from kodosumi.stream_slots import StreamSlots
from kodosumi.telemetry import Telemetry
from kodosumi.tls import TlsMaterial, local_user_name
from kodosumi.v1 import registry_pb2_grpc
from registryd.auth.policy import AUTH_SERVICE
from registryd.auth.runtime import AuthRuntime
from registryd.auth.service_badges import BadgeChange
from registryd.clock import Clock, SystemClock
from registryd.config import ConfigError, RegistryConfig, TlsConfig
from registryd.credentials import RegistryCredentials, ensure_credentials
from registryd.ledger.runtime import SERVICE_NAME as LEDGER_SERVICE_NAME
from registryd.ledger.runtime import LedgerRuntime
from registryd.metrics import RegistryMetrics
from registryd.policy import INSECURE_ROLES, SERVICE_NAME, registry_policy
from registryd.registry import Registry
from registryd.servicer import RegistryServicer
from registryd.sqlite_store import SqliteStore
from registryd.store import RegistryStore

log = logging.getLogger(__name__)

DATABASE_FILE = "registry.sqlite"
ADDRESS_FILE = "registry.json"
LOCK_FILE = "registry.lock"


AUTH_SERVICE_NAME = AUTH_SERVICE.full_name


class ListenError(OSError):
    """The registry cannot listen on the configured address."""


class StateDirBusy(OSError):
    """Another registry process owns the state directory (the store has a single writer)."""


class _StateLock:
    """An exclusive `flock` on `<state>/registry.lock`, held while the daemon runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateDirBusy(
                f"another registryd uses {self.path.parent} (it holds {self.path.name})"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


ADVERTISE_FIX = (
    "pass --advertise HOST:PORT (or set KODOSUMI_REGISTRY_ADVERTISE, or advertise in the TOML)"
)


def dial_address(listen: str, port: int) -> str:
    """A `host:port` a local client can dial for a server listening on `listen`."""
    host = listen.rpartition(":")[0]
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


class RegistryDaemon:
    def __init__(
        self,
        config: RegistryConfig,
        *,
        clock: Clock | None = None,
        run_sweeper: bool = True,
        auth_clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        # Certificates are issued on the wall clock, whatever clock the leases run on.
        self.auth_clock: Clock = auth_clock or SystemClock()
        # The auth provider (registryd/auth), when this registry holds the CA key.
        self.auth: AuthRuntime | None = None
        # The ledger (registryd/ledger), beside the auth provider when `[ledger] enabled`.
        self.ledger: LedgerRuntime | None = None
        self.run_sweeper = run_sweeper
        self.credentials: RegistryCredentials | None = None
        self.port = 0
        # What nodes and people dial (tokens name the first): derived once bound.
        self.endpoints: tuple[str, ...] = ()
        self._store: RegistryStore | None = None
        self._registry: Registry | None = None
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self._services = [SERVICE_NAME]
        self._sweeper: asyncio.Task[None] | None = None
        self._measurer: asyncio.Task[None] | None = None
        self.telemetry: Telemetry | None = None
        self.metrics: RegistryMetrics | None = None
        self.audit: AuditLog | None = None
        self._stopped = asyncio.Event()
        self._lock = _StateLock(config.state_dir / LOCK_FILE)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the registry daemon is not started")
        return self._registry

    @property
    def address(self) -> str:
        return dial_address(self.config.listen, self.port)

    @property
    def address_file(self) -> Path:
        return self.config.state_dir / ADDRESS_FILE

    async def start(self) -> None:
        config = self.config
        refusal = plaintext_refusal(
            config.listen, insecure=config.insecure, allow_remote=config.insecure_allow_remote
        )
        if refusal is not None:
            raise ConfigError(f"insecure: {refusal}")
        try:
            check_advertisable(config.listen, config.advertise, fix=ADVERTISE_FIX)
        except AdvertiseError as e:
            raise ConfigError(f"advertise: {e}") from None
        private_dir(config.state_dir)  # keys, tokens and the registry's database: 0700
        self._lock.acquire()
        try:
            if not config.insecure:
                self.credentials = ensure_credentials(
                    config.state_dir, config.registry_id, self._tls_with_hosts()
                )
            self._store = await SqliteStore.open(config.state_dir / DATABASE_FILE)
            await self._open_auth()
        except BaseException:
            await self._close_store()
            self._lock.release()
            raise
        try:
            self._registry = Registry(
                self._store,
                self.clock,
                config.lease,
                change_retention=config.change_retention,
                badges=config.badges,
            )
            await self._registry.start()
            # Telemetry before the server exists, so that it is traced; registryd/metrics.py.
            self.telemetry = Telemetry.install(
                config.telemetry,
                "registryd",
                attributes={"service.instance.id": config.registry_id},
            )
            self.metrics = RegistryMetrics(
                self.telemetry.meter("registryd"), self._registry, self.clock
            )
            # Refusals and admin actions of both ports (kodosumi/audit.py).
            self.audit = AuditLog(config.state_dir, meter=self.telemetry.meter("registryd.audit"))
            await self._serve()
        except BaseException:
            await self._close_store()
            self._lock.release()
            raise
        if self.auth is not None and self.auth.service_badges is not None:
            await self.auth.service_badges.start()
        if self.run_sweeper:
            self._sweeper = asyncio.create_task(
                self._registry.run_sweeper(config.lease.sweep_interval), name="registry-sweeper"
            )
            self._measurer = asyncio.create_task(self._keep_measuring(), name="service-levels")
        self.metrics.start()
        self._write_address_file()
        # The address actually bound (0.0.0.0 listens on every interface: say so).
        listening = f"{config.listen.rpartition(':')[0]}:{self.port}"
        log.info(
            "registry %s listening on %s, advertised as %s (%s)",
            config.registry_id,
            listening,
            ", ".join(self.endpoints),
            "INSECURE: plaintext, every caller is an admin"
            if config.insecure
            else f"mTLS, trust domain {self.trust_domain}",
        )

    def _tls_with_hosts(self) -> TlsConfig:
        """`[tls]` with every name the certificate must carry: the advertised hosts (for a
        wildcard listen: this host's addresses) and `tls.hosts`."""
        config = self.config
        dns, ips = certificate_hosts(config.listen, config.advertise, config.tls.hosts)
        return replace(config.tls, hosts=dns + ips)

    @property
    def trust_domain(self) -> str | None:
        return self.credentials.trust_domain if self.credentials else None

    async def _open_auth(self) -> None:
        creds = self.credentials
        if creds is None or creds.ca is None or not self.config.auth.enabled:
            return
        # With the development CA the local user (its client.pem) administers the registry.
        local = (str(SpiffeId.user(creds.trust_domain, local_user_name())),)
        self.auth = await AuthRuntime.open(
            self.config.auth,
            creds.ca,
            creds.material(),
            creds.identity,
            self.config.state_dir / DATABASE_FILE,
            self.auth_clock,
            extra_admins=local if creds.client is not None else (),
        )
        if self.config.ledger.enabled:
            self.ledger = await LedgerRuntime.open(
                self.config.ledger,
                self.config.state_dir / DATABASE_FILE,
                self.auth.provider,
                self.auth_clock,
            )

    async def _serve(self) -> None:
        auth = self.auth
        authenticator = Authenticator(
            trust_domain=self.trust_domain,
            roles=auth.provider if auth else StaticRoleResolver(),
            revocations=auth.provider.revocations if auth else None,
            insecure_roles=INSECURE_ROLES,
        )
        ledger = self.ledger
        policy = (
            registry_policy() | (auth.policy if auth else {}) | (ledger.policy if ledger else {})
        )
        server = create_server(policy, authenticator, audit=self.audit)
        # One bound on open streams per identity, over both long-lived streams.
        streams = StreamSlots(0 if self.config.insecure else self.config.open_streams)
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(self.registry, streams), server
        )
        services = self._services = [SERVICE_NAME]
        if auth is not None:
            auth.add_to(server, self.registry, streams)
            services.append(AUTH_SERVICE_NAME)
        if ledger is not None:
            ledger.add_to(server)
            services.append(LEDGER_SERVICE_NAME)
        self._health = add_health_and_reflection(server, services)
        tls: TlsMaterial | None = None
        if auth is not None:
            tls = auth.tls()
        elif self.credentials is not None:
            tls = self.credentials.material()
        try:
            self.port = bind(server, self.config.listen, tls)
        except (OSError, RuntimeError) as e:
            raise ListenError(f"cannot listen on {self.config.listen}: {e}") from None
        self.endpoints = advertised_endpoints(
            self.config.listen, self.port, self.config.advertise, fix=ADVERTISE_FIX
        )
        await server.start()
        self._server = server
        if auth is not None:
            # Tokens tell enrollees on other hosts where to go: the advertised address, and
            # carry every address the registry advertises.
            await auth.start(
                self.config.listen, self.endpoints[0], audit=self.audit, advertise=self.endpoints
            )
        await set_serving(self._health, services, True)

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, end watches, let calls finish, persist leases, close."""
        if self._stopped.is_set():
            return
        grace = self.config.shutdown_grace if grace is None else grace
        with contextlib.suppress(FileNotFoundError):
            self.address_file.unlink()
        if self._health is not None:
            await set_serving(self._health, self._services, False)
        if self._registry is not None:
            self._registry.stop_watches()
        if self.auth is not None:
            self.auth.provider.close()  # ends WatchAuthState streams
        if self._server is not None:
            await self._server.stop(grace)
        for task in (self._sweeper, self._measurer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.metrics is not None:
            await self.metrics.close()
        if self._registry is not None:
            await self._registry.close()
        await self._close_store()
        if self.audit is not None:
            self.audit.close()
        if self.telemetry is not None:
            await asyncio.to_thread(self.telemetry.close)  # may wait for a slow collector
        self._lock.release()
        self._stopped.set()
        log.info("registry %s stopped", self.config.registry_id)

    async def evaluate_service(self) -> list[BadgeChange]:
        """Measure the flows' service; with the auth provider, issue, renew and revoke their
        badges (registryd/auth/service_badges.py). Tests call it; the daemon every
        `[badges] evaluate_interval` seconds."""
        if self.auth is not None and self.auth.service_badges is not None:
            return await self.auth.service_badges.evaluate()
        await self.registry.measure_service()
        return []

    async def _keep_measuring(self) -> None:
        while True:
            await asyncio.sleep(self.config.badges.evaluate_interval)
            try:
                await self.evaluate_service()
            except Exception:
                log.exception("measuring service levels failed; retrying later")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def _close_store(self) -> None:
        if self.ledger is not None:
            ledger, self.ledger = self.ledger, None
            await ledger.close()
        if self.auth is not None:
            auth, self.auth = self.auth, None
            await auth.close()
        if self._store is not None:
            store, self._store = self._store, None
            await store.close()

    def _write_address_file(self) -> None:
        creds = self.credentials
        info: dict[str, Any] = {
            "address": self.address,
            "endpoints": list(self.endpoints),
            "listen": self.config.listen,
            "registry_id": self.config.registry_id,
            "insecure": self.config.insecure,
            "pid": os.getpid(),
            "identity": str(creds.identity) if creds else "",
            "trust_domain": creds.trust_domain if creds else "",
            "ca_cert": str(creds.files.ca_cert) if creds else "",
        }
        if self.auth is not None:
            info["enroll_address"] = self.auth.provider.settings.enroll_address
        if creds is not None and creds.client is not None:
            info["client_cert"] = str(creds.client.cert)
            info["client_key"] = str(creds.client.key)
        tmp = self.address_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(self.address_file)
