"""What a node is made of and how it comes apart: `NodeParts` holds the parts
`NodeApp.start` (app.py) assembles (store, executor pool, network, files, servicers'
health, background tasks), the addresses the node is reached at, its credentials, and the
graceful stop that closes them in order (`stop`, `wait`). `SERVICE_NAMES`: the gRPC
services the node serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from a2a.types import a2a_pb2

from kodosumi.audit import AuditLog
from kodosumi.rpc.server import set_serving
from kodosumi.tls import TlsFiles, TlsMaterial
from kodosumi.v1 import file_pb2, flow_pb2, node_pb2, quote_pb2, usage_pb2
from kodosumid.a2a.http import CardListener
from kodosumid.a2a.node_cards import NodeCards
from kodosumid.auth.identity import NodeCredentials, node_credentials
from kodosumid.auth.link import NodeAuth
from kodosumid.catalog import Catalog
from kodosumid.config import NodeConfig, ensure_node_id
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.ray_pool import RayExecutorPool
from kodosumid.executors.ray_runtime import stop_ray
from kodosumid.files.service import Files
from kodosumid.market.service import Market
from kodosumid.network.peer_network import PeerNetwork
from kodosumid.observability.wiring import NodeObservability
from kodosumid.quotas import Quotas
from kodosumid.reloader import FlowReloader

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    flow_pb2.DESCRIPTOR.services_by_name["FlowService"].full_name,
    node_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name,
    a2a_pb2.DESCRIPTOR.services_by_name["A2AService"].full_name,
    file_pb2.DESCRIPTOR.services_by_name["FileService"].full_name,
    usage_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name,
    quote_pb2.DESCRIPTOR.services_by_name["QuoteService"].full_name,
)


class NodeParts:
    """A node's parts and addresses; `NodeApp` assembles them in `start`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = ensure_node_id(config)
        self.port = 0
        # What peers and clients dial: derived from the listen address once it is bound.
        self.endpoints: tuple[str, ...] = ()
        self.identity = ""
        self.ray_address = ""
        self.client_files: TlsFiles | None = None
        self._owns_ray = False
        self.started = time.monotonic()
        self.start_time_ns = time.time_ns()
        self.store: SqliteEventStore | None = None
        self.executions: ExecutionService | None = None
        self.pool: RayExecutorPool | None = None
        self._server: object | None = None
        self._health: object | None = None
        self._pool_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._pool_health_task: asyncio.Task[None] | None = None
        # Called once Ray runs in this process: starting Ray installs its own fatal-signal
        # handlers (SIGTERM included) over the daemon's, which must be put back.
        self.on_ray_ready: Callable[[], None] | None = None
        self.network: PeerNetwork | None = None
        self.credentials: NodeCredentials | None = None
        self.audit: AuditLog | None = None
        self.auth: NodeAuth | None = None
        self.observability: NodeObservability | None = None
        self.quotas: Quotas | None = None
        self.catalog: Catalog | None = None
        # Per flow: the source files its check imported (what `--reload` watches).
        self.catalog_files: dict[str, tuple[str, ...]] = {}
        self.reloader: FlowReloader | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self.a2a_http: CardListener | None = None
        self.cards: NodeCards | None = None
        self.files: Files | None = None
        self.market: Market | None = None
        self._purge_task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        if host in ("0.0.0.0", "[::]", ""):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    @property
    def advertised_address(self) -> str:
        """The address clients dial: the first advertised one, else the bound one."""
        return self.endpoints[0] if self.endpoints else self.address

    @property
    def info_file(self) -> Path:
        return self.config.state_dir / "node.json"

    def _credentials(self) -> tuple[TlsMaterial | None, str, tuple[str, ...]]:
        """TLS material, trust domain and extra admins (kodosumid/auth/identity.py)."""
        creds = self.credentials = node_credentials(self.config)
        self.client_files = creds.client_files
        self.identity = str(creds.identity) if creds.identity else ""
        if creds.registry_address and not self.config.registry_address:
            # Enrolled: register with the registry of the enrollment.
            self.config = replace(self.config, registry_address=creds.registry_address)
        return creds.tls, creds.trust_domain, creds.extra_admins

    async def stop(self) -> None:
        """Graceful stop: NOT_SERVING, finish or cancel executions, then close everything."""
        log.info("node %s stopping", self.config.node_id)
        with contextlib.suppress(FileNotFoundError):
            self.info_file.unlink()
        if self.network is not None:
            await self.network.leave()  # peers stop routing here while executions finish
        if self._pool_health_task is not None:
            self._pool_health_task.cancel()
        if self._reload_task is not None:
            self._reload_task.cancel()
        if self._health is not None:
            await set_serving(self._health, SERVICE_NAMES, False)  # type: ignore[arg-type]
        if self.a2a_http is not None:
            await self.a2a_http.stop()
        if self._retention_task is not None:
            self._retention_task.cancel()
        if self._purge_task is not None:
            self._purge_task.cancel()
        if self.executions is not None:
            await self.executions.shutdown(self.config.shutdown_grace_seconds)
        if self._server is not None:
            await self._server.stop(1.0)  # type: ignore[attr-defined]
        if self._pool_task is not None:
            self._pool_task.cancel()
            with contextlib.suppress(BaseException):
                await self._pool_task
        if self.network is not None:
            await self.network.close()
        if self.audit is not None:
            self.audit.close()
        if self.auth is not None:
            await self.auth.close()
        if self.pool is not None:
            await self.pool.close()
        if self.market is not None:
            await self.market.close()  # after the last receipts, before the events go
        if self.store is not None:
            await self.store.close()
        if self.files is not None:
            await self.files.store.close()
        if self.observability is not None:
            await self.observability.close()
        if self._owns_ray:
            await asyncio.to_thread(stop_ray)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()  # type: ignore[attr-defined]
