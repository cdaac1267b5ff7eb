"""The node in its network: its registry entry, LAN discovery, the peer table with health
checks, and calls to peers. `NodeApp` creates one, starts it once the server serves,
`leave()`s first on stop (deregister, LAN goodbye: peers stop routing here while running
executions finish) and `close()`s last (relays of running executions still need the links).

    registry ◄─ Registration (register, heartbeat, re-register, deregister)
    registry ─► RegistryFeed (ListNodes + WatchRegistry) ─┐
    LAN ◄─► LanDiscovery (advertise + browse) ────────────┼─► PeerTable ◄─ PeerHealth (checks)
                                                           └── PeerClient ─► peers (launch, relay)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from kodosumi.tls import TlsMaterial
from kodosumi.v1 import node_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.config import NodeConfig
from kodosumid.network.backoff import Backoff, TimeSource
from kodosumid.network.discovery import LanDiscovery, interfaces_for
from kodosumid.network.peer_client import PeerClient, PeerLinks
from kodosumid.network.peer_health import PeerHealth
from kodosumid.network.peers import PeerTable, flows_digest
from kodosumid.network.registration import Registration
from kodosumid.network.registry_client import RegistryClient
from kodosumid.network.registry_feed import RegistryFeed
from kodosumid.network.service_stats import EndedRuns, ServiceStatsMeter

log = logging.getLogger(__name__)


def announced_state(info: node_pb2.NodeInfo) -> str:
    """Digest of what the node announces (not its load): a change means register again."""
    h = hashlib.sha256()
    for part in (*info.endpoints, info.version, *info.capabilities, flows_digest(info.flows)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


class PeerNetwork:
    def __init__(
        self,
        config: NodeConfig,
        tls: TlsMaterial | None,
        time: TimeSource | None = None,
        registry_id: str = "",
    ) -> None:
        self.config = config
        self.time = time or TimeSource()
        self.table = PeerTable(config.node_id, on_change=self._table_changed)
        self.links = PeerLinks(tls, config.peers, config.max_message_bytes)
        self.client = PeerClient(
            self.table,
            self.links,
            config.node_id,
            config.peers.call_timeout_seconds,
            config.peers.health_timeout_seconds,
        )
        self.health = PeerHealth(
            self.table, self.client.probe, config.peers.health_interval_seconds, self.time
        )
        self.registry = (
            RegistryClient(
                config.registry_address,
                tls,
                config.registry.call_timeout_seconds,
                registry_id=registry_id,
            )
            if config.registry_address
            else None
        )
        self.registration: Registration | None = None
        self.stats: ServiceStatsMeter | None = None
        self.feed: RegistryFeed | None = None
        self.discovery: LanDiscovery | None = None
        self._info: Callable[[], node_pb2.NodeInfo] | None = None
        self._announced = ""
        self._tasks: list[asyncio.Task[Any]] = []

    def _table_changed(self, node_id: str) -> None:
        self.health.poke(node_id)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def start(
        self, info: Callable[[], node_pb2.NodeInfo], port: int, ended: EndedRuns | None = None
    ) -> None:
        """Announce the node (registry, LAN) and start following its peers. With `ended` (the
        event store) heartbeats carry the node's per-flow service statistics."""
        self._info = info
        self._announced = announced_state(info())
        if self.registry is not None:
            settings = self.config.registry
            registry = self.registry
            stats = None
            if ended is not None:
                self.stats = ServiceStatsMeter(
                    ended,
                    lambda: [f.name for f in info().flows],
                    refresh_seconds=settings.stats_refresh_seconds,
                )
                meter = self.stats

                async def stats() -> rpb.ServiceStats | None:
                    # Only over the window the registry asked for (its first answer names it).
                    window = registry.stats_window
                    return await meter.report(window) if window else None

            self.registration = Registration(registry, info, settings, self.time, stats)
            self.registration.start()
            backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
            self.feed = RegistryFeed(self.registry, self.table, backoff, self.time)
            self._spawn(self.feed.run(), "registry-feed")
        if self.config.discovery.enabled:
            await self._start_discovery(port)
            if self.discovery is not None:
                self._spawn(self._forget_dead_lan_peers(), "lan-reconcile")
        self._spawn(self.health.run(), "peer-health")
        self._spawn(self._follow_own_state(), "announced-state")

    async def _start_discovery(self, port: int) -> None:
        try:
            interfaces = interfaces_for(self.config.listen, self.config.discovery.interfaces)
            discovery = LanDiscovery(
                node_id=self.config.node_id,
                port=port,
                interfaces=interfaces,
                txt=self._txt,
                on_seen=self.table.lan_seen,
                on_gone=self.table.lan_gone,
                ask_again_seconds=self.config.peers.lan_forget_seconds,
            )
            await discovery.start()
        except OSError as e:
            # No usable multicast interface: the node serves on, without LAN discovery.
            log.warning("LAN discovery unavailable: %s", e)
            return
        self.discovery = discovery

    async def _forget_dead_lan_peers(self) -> None:
        """mDNS never says goodbye for a crashed host: reconcile the LAN side with the
        health checks and the registry's leases (`PeerTable.lan_stale`)."""
        assert self.discovery is not None
        peers = self.config.peers
        while True:
            await self.time.sleep(peers.health_interval_seconds)
            for node_id in self.table.lan_stale(self.time.clock(), peers.lan_forget_seconds):
                peer = self.table.get(node_id)
                why = peer.liveness_reason if peer is not None else ""
                log.info("forgetting LAN peer %s: it does not answer (%s)", node_id, why)
                self.discovery.forget(node_id)
                self.table.lan_gone(node_id)

    def _txt(self) -> dict[str, str]:
        assert self._info is not None
        info = self._info()
        return {
            "id": info.node_id,
            "identity": info.identity,
            "version": info.version,
            "flows": flows_digest(info.flows),
            "tls": "0" if self.config.insecure else "1",
        }

    async def refresh(self) -> None:
        """The node's catalog, endpoints or version changed: announce it again now."""
        if self._info is not None:
            self._announced = announced_state(self._info())
        if self.registration is not None:
            self.registration.refresh()
        if self.discovery is not None:
            await self.discovery.update()

    async def _follow_own_state(self) -> None:
        """Notice changes of what the node announces, whoever made them."""
        assert self._info is not None
        while True:
            await self.time.sleep(self.config.peers.health_interval_seconds)
            if announced_state(self._info()) != self._announced:
                log.info("the node's announced state changed; announcing it again")
                await self.refresh()

    async def leave(self) -> None:
        """Stop announcing this node: deregister, say goodbye on the LAN, stop following."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.registration is not None:
            await self.registration.stop("shutdown")
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.stop()

    async def close(self) -> None:
        await self.links.close()
        if self.registry is not None:
            await self.registry.close()
