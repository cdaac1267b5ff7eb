"""Assemble and run a node: credentials, store, Ray, executor pool, gRPC server.
The node's parts, its addresses and its graceful stop are in node_parts.py (`NodeParts`,
the base of `NodeApp`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace

import ray
from a2a.types import a2a_pb2_grpc

from kodosumi.addresses import AdvertiseError, advertised_endpoints, check_advertisable
from kodosumi.audit import AuditLog
from kodosumi.authz import ADMIN, StaticRoleResolver
from kodosumi.errors import InvalidArgument
from kodosumi.plaintext import plaintext_refusal
from kodosumi.rpc.guard import Authenticator
from kodosumi.rpc.server import (
    ServerLimits,
    add_health_and_reflection,
    bind,
    create_server,
    set_serving,
)
from kodosumi.sqlite import private_dir
from kodosumi.v1 import flow_pb2_grpc, node_pb2_grpc, quote_pb2_grpc, usage_pb2_grpc
from kodosumid.a2a.http import CardListener
from kodosumid.a2a.node_cards import NodeCards
from kodosumid.a2a.servicer import A2AServicer
from kodosumid.a2a.tasks import A2ATasks, TaskLimits
from kodosumid.auth.flow_identity import flows_dir
from kodosumid.auth.link import NodeAuth
from kodosumid.auth.policy import NODE_POLICY
from kodosumid.catalog import Catalog, example_flows
from kodosumid.catalog_check import node_catalog
from kodosumid.config import NodeConfig
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.caller_settings import CallerSettings
from kodosumid.executors.code_shipping import code_runtime_env, executor_workdir
from kodosumid.executors.credentials import CallerCredentials
from kodosumid.executors.preload import effective_preload
from kodosumid.executors.ray_pool import RayExecutorPool
from kodosumid.executors.ray_runtime import start_ray
from kodosumid.files.peer_link import PeerFiles
from kodosumid.files.servicer import FileServicer, add_file_service
from kodosumid.files.wiring import keep_purging, open_files
from kodosumid.market.service import node_signer, open_market
from kodosumid.market.servicer import QuoteServicer
from kodosumid.network.peer_network import PeerNetwork
from kodosumid.node_info import node_info, write_info_file
from kodosumid.node_parts import SERVICE_NAMES, NodeParts
from kodosumid.observability.wiring import NodeObservability
from kodosumid.pool_serving import follow_pool
from kodosumid.quotas import Quotas
from kodosumid.reloader import FlowReloader
from kodosumid.servicers import FlowServicer, NodeServicer
from kodosumid.usage_servicer import UsageServicer

log = logging.getLogger(__name__)

__all__ = ["ADVERTISE_FIX", "SERVICE_NAMES", "NodeApp", "check_advertise"]


ADVERTISE_FIX = (
    "pass --advertise HOST:PORT (or set KODOSUMI_ADVERTISE, or [node] advertise in the TOML)"
)


def check_advertise(config: NodeConfig) -> None:
    """A start-up error (naming the fix) when the node would have nothing usable to advertise."""
    try:
        check_advertisable(config.listen, config.advertise, fix=ADVERTISE_FIX)
    except AdvertiseError as e:
        raise InvalidArgument.field("node.advertise", str(e)) from None


class NodeApp(NodeParts):
    async def start(self) -> None:
        config = self.config
        refusal = plaintext_refusal(
            config.listen, insecure=config.insecure, allow_remote=config.insecure_allow_remote
        )
        if refusal is not None:
            raise InvalidArgument.field("insecure", refusal)
        check_advertise(config)
        private_dir(config.state_dir)  # keys and every user's executions: 0700
        tls, trust_domain, extra_admins = self._credentials()
        config = self.config
        configured = config.flows if config.flows is not None else example_flows()
        if not config.python_path:
            self.config = config = replace(config, python_path=(os.getcwd(),))
        # Every entry imported in a process of its own while Ray starts (catalog_check.py).
        checking = asyncio.get_running_loop().create_task(node_catalog(configured, config))
        if config.strict:
            await checking  # a broken flow stops the start before Ray does
        # Telemetry, metrics, alerts (kodosumid/observability/wiring.py): before any server or
        # channel exists, so that they are traced.
        self.observability = observability = NodeObservability(config)
        observability.start_telemetry()

        self.store = SqliteEventStore(
            config.state_dir / "events.sqlite", synchronous=config.store_synchronous
        )
        await self.store.open()
        self._owns_ray = not ray.is_initialized()
        # On a cluster, executors may run on other hosts: the flows' code travels with the
        # job (kodosumid/executors/code_shipping.py), not as the node's paths.
        runtime_env = (
            {}
            if config.ray.embedded
            else code_runtime_env(
                (f.entrypoint for f in configured),
                config.python_path,
                executor_workdir(config.state_dir),
            )
        )
        self.ray_address = await asyncio.to_thread(
            start_ray, config.ray, config.state_dir, runtime_env
        )
        if self.on_ray_ready is not None:
            self.on_ray_ready()
        check = await checking
        self.catalog_files = dict(check.files)
        self.catalog = catalog = Catalog(check.flows)
        # CrewAI is preloaded only for a catalog with CrewAI flows (executors/preload.py).
        entrypoints = [f.entrypoint for f in catalog.list()]
        preload = effective_preload(config.pool.preload_modules, entrypoints, config.python_path)
        self.pool = RayExecutorPool(
            replace(config.pool, preload_modules=preload),
            config.node_id,
            detached=not config.ray.embedded,
            namespace=config.ray.namespace,
            env=observability.executor_env(),
        )
        self.pool.ships_code = bool(runtime_env) and self._owns_ray
        hub = WatchHub()
        # Per-identity quotas (kodosumid/quotas.py): a terminal status frees a running slot.
        self.quotas = quotas = Quotas(config.quotas, stored_bytes=self.store.stored_bytes)
        quotas.seed(await self.store.unfinished())
        observability.observer.add(quotas)
        # Registry, LAN discovery and peer calls (kodosumid/network/peer_network.py).
        registry_id = self.credentials.registry_id if self.credentials else ""
        self.network = network = PeerNetwork(config, tls, registry_id=registry_id)
        peers = network.table if config.peers.forward else None
        self.executions = executions = ExecutionService(
            config,
            catalog,
            self.store,
            hub,
            self.pool,
            peers=network.client,
            observer=observability.observer,
            identity=self.identity,
        )
        # Files in and out of runs (kodosumid/files/): they go with their executions.
        self.files = files = await open_files(
            config.state_dir,
            config.files,
            node_id=config.node_id,
            records=self.store.get_execution,
            speaks_for=executions.access.speaks_for,
            quotas=quotas,
            synchronous=config.store_synchronous,
        )
        executions.retention.on_deleted.append(files.executions_deleted)
        executions.attach_files(files)
        self._purge_task = asyncio.get_running_loop().create_task(keep_purging(files))
        # Quotes, the ceiling of quoted runs, receipts (kodosumid/market/, docs/market.md).
        self.market = market = await open_market(
            config.state_dir,
            node_id=config.node_id,
            catalog=catalog,
            events=self.store,
            signer=node_signer(self.credentials),
            synchronous=config.store_synchronous,
        )
        market.attach(executions, observability.observer)
        await observability.start(
            counts=executions.counts,
            pool=self.pool.counts,
            watchers=lambda: hub.watcher_count,
            network=network,
        )
        # The pool warms up while the server already accepts launches (they wait for it).
        # Its executors dial this node (`ctx.call_flow`), so it starts once the port is bound.
        bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pool_task = asyncio.get_running_loop().create_task(self._start_pool(bound))
        self.pool.ready = self._pool_task
        await executions.recover()
        if config.retention_seconds > 0:
            self._retention_task = asyncio.get_running_loop().create_task(
                executions.keep_for(config.retention_seconds)
            )

        local_roles = StaticRoleResolver(
            admins=config.admins + extra_admins, operators=config.operators
        )
        # Roles, groups and revocations from the auth provider (kodosumid/auth/link.py).
        if self.credentials is not None and self.credentials.auth_address:
            self.auth = NodeAuth(self.credentials, config.auth, local_roles, config.state_dir)
            if self.auth.ledger is not None:
                # Quoted launches hold their ceiling, receipts settle it (docs/market.md).
                market.launch_hooks.append(self.auth.ledger.reserve)
                market.receipt_sinks.append(self.auth.ledger.settle)
                # After a restart: settle the open holds whose runs ended (their receipts).
                self.auth.ledger.receipt_of = market.receipts.issue
        # Receipts of quoted runs that ended while the node was down: after the ledger's sink
        # is in place, so that they are settled too.
        market.start()
        authenticator = Authenticator(
            trust_domain=trust_domain or None,
            roles=self.auth.grants if self.auth else local_roles,
            revocations=self.auth.revocations if self.auth else None,
            insecure_roles=frozenset({ADMIN}),
        )
        # Refusals and admin actions (kodosumi/audit.py), counted with the node's metrics.
        self.audit = AuditLog(
            config.state_dir,
            meter=observability.telemetry.meter(
                "kodosumid.audit", {"kodosumi.node_id": config.node_id}
            )
            if observability.telemetry is not None
            else None,
        )
        server = create_server(
            NODE_POLICY,
            authenticator,
            ServerLimits(max_receive_message_bytes=config.max_message_bytes),
            audit=self.audit,
        )
        flow_pb2_grpc.add_FlowServiceServicer_to_server(
            FlowServicer(
                catalog, executions, config.node_id, peers, quotas, authenticator.principal_of
            ),
            server,
        )
        node_pb2_grpc.add_NodeServiceServicer_to_server(
            NodeServicer(
                lambda: node_info(self, catalog, hub),
                observability.watch_alerts,
                network.table,
                quotas,
            ),
            server,
        )
        # Metered usage of the executions (docs/market.md, Metering).
        usage_pb2_grpc.add_UsageServiceServicer_to_server(
            UsageServicer(executions.metering), server
        )
        quote_pb2_grpc.add_QuoteServiceServicer_to_server(QuoteServicer(market), server)
        # Forwarded launches bring their files; their outputs are fetched through here.
        peer_files = PeerFiles(network.client.files) if network.client is not None else None
        files.identity, files.peers = self.identity, peer_files
        files.principals = authenticator.principal_of  # whose file quota an owner spends
        add_file_service(FileServicer(files, config.node_id, peer_files), server)
        # A2A on the same port, identities, guard and executions (kodosumid/a2a/).
        a2a_tasks = A2ATasks(
            executions,
            catalog,
            config.node_id,
            TaskLimits(config.a2a.max_part_bytes, config.a2a.cancel_wait_seconds),
            quotas,
        )
        self.cards = cards = NodeCards(
            config.node_id, lambda: self.advertised_address, self.credentials, catalog
        )
        a2a_tasks.files = files  # file parts in, output files out (kodosumid/a2a/files.py)
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(  # type: ignore[no-untyped-call]
            A2AServicer(a2a_tasks, catalog, cards.settings, cards.signing_material), server
        )
        self._health = add_health_and_reflection(server, SERVICE_NAMES)
        self.port = bind(server, config.listen, tls)
        self.endpoints = advertised_endpoints(
            config.listen, self.port, config.advertise, fix=ADVERTISE_FIX
        )
        self.pool.caller = self._caller_settings().to_dict()
        self.pool.credentials = self._caller_credentials()
        bound.set_result(None)
        await server.start()
        self._server = server
        await set_serving(self._health, SERVICE_NAMES, True)  # type: ignore[arg-type]
        self._pool_health_task = asyncio.get_running_loop().create_task(
            follow_pool(self.pool, self._health, config.node_id, SERVICE_NAMES[:1])
        )
        if config.reload and config.check_catalog:
            self.reloader = FlowReloader(
                configured,
                config.python_path,
                catalog,
                self.catalog_files,
                self.pool.renew,
                announce=network.refresh,
            )
            self._reload_task = asyncio.get_running_loop().create_task(self.reloader.run())
        write_info_file(self)
        await network.start(
            lambda: node_info(self, catalog, hub, detail=False), self.port, ended=self.store
        )
        if config.a2a.http_listen:
            self.a2a_http = CardListener(config.a2a.http_listen, cards.public_card)
            await self.a2a_http.start()
        if self.auth is not None:
            self.auth.start(lambda: [f.name for f in catalog.list()])
        # The address actually bound (0.0.0.0 listens on every interface: say so).
        listening = f"{config.listen.rpartition(':')[0]}:{self.port}"
        log.info(
            "node %s listening on %s, advertised as %s (%s)",
            config.node_id,
            listening,
            ", ".join(self.endpoints),
            self.identity or "INSECURE: plaintext, every caller is an admin",
        )

    async def _start_pool(self, bound: asyncio.Future[None]) -> None:
        assert self.pool is not None
        await bound
        await self.pool.start()

    def _caller_settings(self) -> CallerSettings:
        """How this node's executors dial it (`ctx.call_flow`): its advertised address (an
        executor may run on another host; never 127.0.0.1 for a node listening on 0.0.0.0).
        The credentials go with each start, as data (kodosumid/executors/credentials.py)."""
        address = self.endpoints[0] if self.endpoints else self.address
        return CallerSettings(address, self.config.node_id)

    def _caller_credentials(self) -> CallerCredentials:
        """The flow's own identity when it has one, else the node's; none when insecure."""
        files = self.credentials.files if self.credentials is not None else None
        if files is None:
            return CallerCredentials(None, None)
        return CallerCredentials(files, flows_dir(self.config.state_dir))
