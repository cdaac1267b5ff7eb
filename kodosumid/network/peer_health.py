"""Liveness of the peers, judged by this node's own health checks.

Every peer is checked every `interval` seconds; a peer not checked yet (just discovered)
or whose LAN announcement says its flows changed is checked at once. A check asks the
peer's `grpc.health.v1.Health` (and fetches its node info when needed): answering SERVING
makes it ALIVE, anything else DEAD with the reason. The probe itself is injected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kodosumid.network.backoff import TimeSource
from kodosumid.network.peers import Liveness, Peer, PeerTable, Probe

log = logging.getLogger(__name__)

MAX_CONCURRENT_PROBES = 16


class PeerHealth:
    def __init__(
        self,
        table: PeerTable,
        probe: Callable[[Peer], Awaitable[Probe]],
        interval: float,
        time: TimeSource | None = None,
    ) -> None:
        self.table = table
        self.probe = probe
        self.interval = interval
        self.time = time or TimeSource()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_PROBES)

    def poke(self, node_id: str) -> None:
        """A source changed what it says about `node_id`: check it soon if it is new."""
        peer = self.table.get(node_id)
        if peer is not None and (peer.liveness is Liveness.UNKNOWN or peer.needs_node_info):
            self._wake.set()

    async def run(self) -> None:
        next_full = 0.0
        while True:
            self._wake.clear()
            now = self.time.clock()
            full = now >= next_full
            if full:
                next_full = now + self.interval
            await self.check(everyone=full)
            sleeper = asyncio.ensure_future(self.time.sleep(max(0.0, next_full - now)))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()

    async def check(self, *, everyone: bool = True) -> None:
        peers = [
            p
            for p in self.table.entries()
            if everyone or p.liveness is Liveness.UNKNOWN or p.needs_node_info
        ]
        await asyncio.gather(*(self._check(p) for p in peers))

    async def _check(self, peer: Peer) -> None:
        async with self._limit:
            result = await self.probe(peer)
        if self.table.get(peer.node_id) is not peer:
            return  # dropped meanwhile
        before = peer.liveness
        if result.info is not None:
            self.table.node_info(peer.node_id, result.info)
        self.table.checked(
            peer.node_id,
            alive=result.alive,
            reason=result.reason,
            at=self.time.clock(),
            endpoint=result.endpoint,
        )
        if peer.liveness is not before:
            log.info("peer %s is %s (%s)", peer.node_id, peer.liveness, result.reason)
