"""LAN discovery with zeroconf: advertise this node as `_kodosumi._tcp.local.` and browse
for the other nodes that do.

The TXT record says who the node is and whether its flows changed: `id` (node id),
`identity` (SPIFFE id of its certificate), `version`, `flows` (digest of the flow catalog),
`tls` (`1` for mTLS). Peers fetch the flows themselves (GetNodeInfo) when the digest changes.

mDNS reports a node gone only when it says goodbye (a clean stop); a crashed node stays
listed until its records expire, which takes long. Whether a peer answers is therefore
decided by health checks, never by discovery. A peer the node gave up on (`forget`: its
checks failed long enough, or the registry's lease ran out) is dropped from the cache here
too, so that its next announcement counts as new; while forgotten peers exist, they are
asked for now and then (a cable plugged back announces nothing by itself).

By default discovery binds to the interface the node listens on (127.0.0.1 for a node on
loopback, every interface for 0.0.0.0), IPv4 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import ifaddr
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from kodosumid.network.peers import LanAnnouncement

log = logging.getLogger(__name__)

SERVICE_TYPE = "_kodosumi._tcp.local."
RESOLVE_TIMEOUT_MS = 3000
# Forgotten peers are asked for this long (mDNS's own records outlive a crash about as long),
# at most this many at a time, each ask waiting this long for an answer.
FORGOTTEN_HORIZON_SECONDS = 3600.0
MAX_FORGOTTEN = 256
ASK_AGAIN_TIMEOUT_MS = 1000
_ANY_HOSTS = ("", "0.0.0.0", "::")
_LABEL = re.compile(r"[^A-Za-z0-9-]")

Interfaces = list[str] | InterfaceChoice


def interfaces_for(listen: str, configured: tuple[str, ...] = ()) -> Interfaces:
    """The interfaces to run mDNS on: the configured ones, else the one `listen` names."""
    if configured:
        return InterfaceChoice.All if "all" in configured else list(configured)
    host = listen.rpartition(":")[0].strip("[]")
    if host in _ANY_HOSTS:
        return InterfaceChoice.All
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = socket.gethostbyname(host)
    return [host]


def advertised_addresses(interfaces: Interfaces) -> list[str]:
    """Where peers can reach this node: the interfaces' addresses; loopback only when
    nothing else exists (a peer on another host must never be sent to its own loopback)."""
    if isinstance(interfaces, list):
        return interfaces
    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if ip.is_IPv4 and not ipaddress.ip_address(str(ip.ip)).is_loopback
    ]
    return found or ["127.0.0.1"]


def announcement_of(info: AsyncServiceInfo) -> LanAnnouncement | None:
    """A resolved service as a peer announcement (None when it is not a kodosumi node)."""
    props = {
        k.decode(errors="replace"): (v or b"").decode(errors="replace")
        for k, v in (info.properties or {}).items()
    }
    node_id = props.get("id", "")
    if not node_id or not info.port:
        return None
    endpoints = []
    for address in info.parsed_addresses():
        host = f"[{address}]" if ":" in address else address
        endpoints.append(f"{host}:{info.port}")
    return LanAnnouncement(
        node_id=node_id,
        endpoints=tuple(endpoints),
        identity=props.get("identity", ""),
        version=props.get("version", ""),
        flows_digest=props.get("flows", ""),
    )


class LanDiscovery:
    def __init__(
        self,
        *,
        node_id: str,
        port: int,
        interfaces: Interfaces,
        txt: Callable[[], dict[str, str]],
        on_seen: Callable[[LanAnnouncement], None],
        on_gone: Callable[[str], None],
        ask_again_seconds: float = 12.0,
    ) -> None:
        self.node_id = node_id
        self.port = port
        self.interfaces = interfaces
        self.txt = txt
        self.on_seen = on_seen
        self.on_gone = on_gone
        self.advertised = False
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._register: asyncio.Task[None] | None = None
        # Service name -> node id of the peers seen (a goodbye names only the service).
        self._names: dict[str, str] = {}
        # Service name -> when it was forgotten (monotonic), for the peers given up on.
        self._forgotten: dict[str, float] = {}
        self.ask_again_seconds = ask_again_seconds
        self._ask_again: asyncio.Task[None] | None = None

    def _service_info(self) -> AsyncServiceInfo:
        label = _LABEL.sub("-", self.node_id)[:63].strip("-") or "node"
        addresses = advertised_addresses(self.interfaces)
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.node_id[:63]}.{SERVICE_TYPE}",
            port=self.port,
            properties=self.txt(),
            server=f"{label}.local.",
            parsed_addresses=addresses,
        )

    async def start(self) -> None:
        all_v4 = isinstance(self.interfaces, InterfaceChoice) or all(
            ipaddress.ip_address(i).version == 4 for i in self.interfaces
        )
        self._zc = AsyncZeroconf(
            interfaces=self.interfaces,
            ip_version=IPVersion.V4Only if all_v4 else IPVersion.All,
        )
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_state_change]
        )
        # Probing for a unique name takes a second or more: advertise in the background.
        self._register = asyncio.get_running_loop().create_task(self._advertise())

    async def _advertise(self) -> None:
        assert self._zc is not None
        info = self._service_info()
        try:
            await (await self._zc.async_register_service(info))
        except NonUniqueNameException:
            log.warning("another node advertises %s on the LAN; not advertising", self.node_id)
            return
        self._info, self.advertised = info, True
        log.info("advertising %s on the LAN as %s", self.node_id, info.name)

    async def update(self) -> None:
        """Announce a changed TXT record (the flow catalog changed)."""
        if self._zc is None or not self.advertised:
            return
        self._info = self._service_info()
        await (await self._zc.async_update_service(self._info))

    async def stop(self) -> None:
        """Say goodbye (so peers drop this node at once), stop browsing, close the sockets."""
        running = [t for t in [self._register, self._ask_again, *self._tasks] if t is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._zc is None:
            return
        if self._info is not None and self.advertised:
            with contextlib.suppress(Exception):
                # The returned task sends the goodbye: it must be awaited as well.
                await (await self._zc.async_unregister_service(self._info))
            self.advertised = False
        if self._browser is not None:
            await self._browser.async_cancel()
        await self._zc.async_close()
        self._zc = None

    # zeroconf calls handlers with these keyword names, on the event loop.
    def _on_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        self._forgotten.pop(name, None)  # heard of again
        if state_change is ServiceStateChange.Removed:
            node_id = self._names.pop(name, "")
            if node_id:
                self.on_gone(node_id)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str, timeout_ms: int = RESOLVE_TIMEOUT_MS) -> None:
        if self._zc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zc.zeroconf, timeout_ms):
            return
        announcement = announcement_of(info)
        if announcement is None or announcement.node_id == self.node_id:
            return
        self._forgotten.pop(name, None)
        self._names[name] = announcement.node_id
        self.on_seen(announcement)

    # -- peers given up on ---------------------------------------------------------------

    def forget(self, node_id: str) -> None:
        """Drop a peer the node gave up on: its names, and its records in the mDNS cache
        (pointer, service, text, addresses), so that its next announcement is news."""
        names = [name for name, seen in self._names.items() if seen == node_id]
        for name in names:
            del self._names[name]
            self._forgotten[name] = time.monotonic()
            if self._zc is not None:
                self._zc.zeroconf.cache.async_remove_records(self._cached(name))
        while len(self._forgotten) > MAX_FORGOTTEN:
            self._forgotten.pop(next(iter(self._forgotten)))
        if self._forgotten and (self._ask_again is None or self._ask_again.done()):
            self._ask_again = asyncio.get_running_loop().create_task(self._ask_for_forgotten())

    def _cached(self, name: str) -> list[Any]:
        """The cached records of one service: the pointer naming it, its own records (service,
        text), and the address records of its host. (Read by attribute: the record classes
        are not part of zeroconf's exported names.)"""
        assert self._zc is not None
        cache = self._zc.zeroconf.cache
        found: list[Any] = [
            r
            for r in cache.async_entries_with_name(SERVICE_TYPE)
            if str(getattr(r, "alias", "")).lower() == name.lower()
        ]
        own = cache.async_entries_with_name(name)
        found += own
        for server in {str(getattr(r, "server", "")) for r in own} - {""}:
            found += cache.async_entries_with_name(server)
        return found

    async def _ask_for_forgotten(self) -> None:
        """Ask for each forgotten peer every `ask_again_seconds` until it answers (it is
        seen again) or the horizon passes."""
        while self._forgotten:
            await asyncio.sleep(self.ask_again_seconds)
            horizon = time.monotonic() - FORGOTTEN_HORIZON_SECONDS
            for name, since in list(self._forgotten.items()):
                if since < horizon:
                    self._forgotten.pop(name, None)
                elif name in self._forgotten:
                    await self._resolve(name, ASK_AGAIN_TIMEOUT_MS)
