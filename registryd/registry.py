"""The registry's domain: registrations, leases, liveness, reads and watches.

Plain typed objects in and out, a `RegistryStore` and a `Clock` injected; nothing here knows
gRPC. Rules:

- A node registers with its full state; registering again re-asserts it (flows missing from the
  new registration are removed) and is idempotent: the same state makes no change.
- Heartbeats renew the lease in memory (the hot path touches no disk); `sweep` persists
  renewed leases and turns nodes whose lease ran out OFFLINE. OFFLINE nodes are kept and
  visible; a heartbeat or a registration brings them back. Deregistered nodes are LEFT.
- On `start`, every node that was ONLINE keeps its lease at least `restart_grace` seconds.
- Every change gets a revision in the store's log; `watch` replays the log after a revision
  and then follows it, so a client resumes after a disconnect without gaps or repeats.

State changes (register, deregister, revive, expire) run one at a time under a lock; the
heartbeat of an ONLINE node takes no lock and no I/O.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument
from registryd.changes import registration_changes
from registryd.clock import Clock
from registryd.config import BadgesConfig, LeaseConfig
from registryd.errors import (
    FlowOfferNotFound,
    NodeNotFound,
    NodeNotRegistered,
)
from registryd.feed import ChangeFeed
from registryd.lease import Lease, LeaseRules, LeaseTable
from registryd.market import OfferFilter, OfferSieve
from registryd.model import (
    Change,
    ChangeDraft,
    ChangeKind,
    FlowOffer,
    FlowOfferPage,
    Heartbeat,
    LeaseGrant,
    NodeAnnouncement,
    NodeLoad,
    NodePage,
    NodeQuery,
    NodeRecord,
    NodeState,
)
from registryd.paging import MAX_PAGE_SIZE, OfferKey, node_page, offer_page, page_size_of
from registryd.policy import check_node_writer
from registryd.service_levels import ServiceBook, ServiceLevels
from registryd.service_stats import ServiceReport, check_report
from registryd.store import RegistryStore
from registryd.validate import check_announcement, check_node_id
from registryd.watch import Watch, open_watch

log = logging.getLogger(__name__)


class Registry:
    def __init__(
        self,
        store: RegistryStore,
        clock: Clock,
        lease: LeaseConfig | None = None,
        *,
        change_retention: int = 10_000,
        badges: BadgesConfig | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = LeaseRules(lease or LeaseConfig())
        # Service statistics from heartbeats, their measures and badge levels.
        self.badges = badges or BadgesConfig()
        self.service = ServiceBook()
        self.levels = ServiceLevels(store, self.badges, self.service)
        self.change_retention = change_retention
        self._leases = LeaseTable()
        self._feed = ChangeFeed()
        self._lock = asyncio.Lock()

    @property
    def revision(self) -> int:
        """The latest committed revision watchers know of."""
        return self._feed.revision

    @property
    def online_count(self) -> int:
        return len(self._leases)

    async def start(self) -> None:
        """Take up the stored state: every ONLINE node gets at least the restart grace period."""
        now = self.clock.now()
        grace_until = now + self.rules.config.restart_grace
        async with self._lock:
            for node in await self.store.list_nodes(
                NodeQuery(states=frozenset({NodeState.ONLINE}))
            ):
                self._leases.put(
                    replace(node, lease_expires_at=max(node.lease_expires_at, grace_until))
                )
            self._feed.publish(await self.store.revision())
        log.info(
            "registry holds %d online node(s) at revision %d", len(self._leases), self.revision
        )

    def stop_watches(self) -> None:
        """End every watch stream with UNAVAILABLE (clients reconnect and resume)."""
        self._feed.close()

    async def close(self) -> None:
        """Persist renewed leases; the store stays open (its owner closes it)."""
        self.stop_watches()
        async with self._lock:
            await self.store.save_leases(self._leases.take_dirty())

    # -- writes (node role; a node writes its own entry only) ---------------------------------

    async def register(
        self, writer: Principal, announcement: NodeAnnouncement
    ) -> tuple[NodeRecord, LeaseGrant]:
        check_node_writer(writer, announcement.node_id)
        check_announcement(announcement)
        interval = self.rules.interval(announcement.heartbeat_interval)
        identity = str(writer.identity) if writer.identity else ""
        async with self._lock:
            now = self.clock.now()
            before = await self.store.get_node(announcement.node_id)
            lease = self._leases.get(announcement.node_id)
            grant = self.rules.grant(interval, now)
            was_online = before is not None and before.state is NodeState.ONLINE
            after = NodeRecord(
                node_id=announcement.node_id,
                identity=identity,
                endpoints=announcement.endpoints,
                flows=announcement.flows,
                version=announcement.version,
                capabilities=announcement.capabilities,
                state=NodeState.ONLINE,
                state_reason=before.state_reason if before and was_online else "registered",
                load=announcement.load or _last_load(lease, before),
                first_registered_at=before.first_registered_at if before else now,
                state_changed_at=before.state_changed_at if before and was_online else now,
                last_heartbeat_at=now,
                lease_expires_at=grant.expires_at,
                heartbeat_interval=interval,
                revision=before.revision if before else 0,
            )
            saved, changes = await self.store.commit(
                after, registration_changes(before, after, now)
            )
            self._leases.put(saved)
            self._publish(changes)
        if changes and changes[0].kind is ChangeKind.NODE_ONLINE:
            log.info("node %s online with %d flow(s)", saved.node_id, len(saved.flows))
        elif changes:
            log.info("node %s re-registered: %d change(s)", saved.node_id, len(changes))
        return saved, grant

    async def heartbeat(self, writer: Principal, beat: Heartbeat) -> LeaseGrant:
        check_node_writer(writer, beat.node_id)
        lease = self._leases.get(beat.node_id)
        if lease is not None:
            # The hot path: an ONLINE node renews its lease in memory.
            now = self.clock.now()
            interval = self.rules.interval(beat.heartbeat_interval, lease.heartbeat_interval)
            grant = self.rules.grant(interval, now)
            self._take_stats(beat.node_id, beat.stats, lease.flows, now)
            LeaseTable.renew(lease, grant, now, beat.load)
            return grant
        check_node_id(beat.node_id)
        self.rules.interval(beat.heartbeat_interval)
        async with self._lock:
            return await self._revive(beat)

    async def _revive(self, beat: Heartbeat) -> LeaseGrant:
        """A heartbeat from a node without a live lease: OFFLINE comes back, others register."""
        now = self.clock.now()
        lease = self._leases.get(beat.node_id)
        if lease is not None:
            # Renewed or re-registered while this call waited for the lock.
            grant = self.rules.grant(
                self.rules.interval(beat.heartbeat_interval, lease.heartbeat_interval), now
            )
            LeaseTable.renew(lease, grant, now, beat.load)
            return grant
        node = await self.store.get_node(beat.node_id)
        if node is None:
            raise NodeNotRegistered(beat.node_id, "is not registered")
        if node.state is NodeState.LEFT:
            raise NodeNotRegistered(beat.node_id, "deregistered")
        self._take_stats(node.node_id, beat.stats, frozenset(f.name for f in node.flows), now)
        grant = self.rules.grant(
            self.rules.interval(beat.heartbeat_interval, node.heartbeat_interval), now
        )
        if node.state is NodeState.ONLINE:
            # Stored ONLINE without a live lease (a failed sweep): hold the lease again.
            lease = self._leases.put(node)
            LeaseTable.renew(lease, grant, now, beat.load)
            return grant
        back = replace(
            node,
            state=NodeState.ONLINE,
            state_reason="heartbeat after the lease ran out",
            state_changed_at=now,
            last_heartbeat_at=now,
            lease_expires_at=grant.expires_at,
            heartbeat_interval=grant.heartbeat_interval,
            load=beat.load or node.load,
        )
        saved, changes = await self.store.commit(back, [ChangeDraft(ChangeKind.NODE_ONLINE, now)])
        self._leases.put(saved)
        self._publish(changes)
        log.info("node %s online again: it heartbeats after its lease ran out", saved.node_id)
        return grant

    def _take_stats(
        self, node_id: str, stats: ServiceReport | None, flows: frozenset[str], now: float
    ) -> None:
        """Check a node's statistics against what it registered, then keep them."""
        if stats is not None:
            check_report(stats, flows, self.badges.window)
            self.service.record(node_id, replace(stats, at=now))

    async def deregister(self, writer: Principal, node_id: str, reason: str = "") -> NodeRecord:
        check_node_writer(writer, node_id)
        check_node_id(node_id)
        async with self._lock:
            now = self.clock.now()
            node = await self.store.get_node(node_id)
            if node is None:
                raise NodeNotFound(node_id)
            if node.state is NodeState.LEFT:
                return node
            node = self._live(node)
            self._leases.drop(node_id)
            left = replace(
                node,
                state=NodeState.LEFT,
                state_reason=reason or "deregistered",
                state_changed_at=now,
                lease_expires_at=min(node.lease_expires_at, now),
            )
            saved, changes = await self.store.commit(left, [ChangeDraft(ChangeKind.NODE_LEFT, now)])
            self._publish(changes)
        log.info("node %s left: %s", node_id, saved.state_reason)
        return saved

    # -- liveness ------------------------------------------------------------------------------

    async def sweep(self) -> list[str]:
        """One step of the lease keeper: expire ran-out leases, persist renewed ones, compact
        the change log. Returns the ids of the nodes that went OFFLINE."""
        now = self.clock.now()
        # Taken out of the table before any await: a heartbeat arriving meanwhile finds no
        # lease, waits for the lock and then revives the node it finds OFFLINE.
        expired = self._leases.pop_expired(now)
        gone: list[str] = []
        async with self._lock:
            for i, lease in enumerate(expired):
                if self._leases.get(lease.node_id) is not None:
                    continue  # re-registered while we waited for the lock
                try:
                    if await self._expire(lease, now):
                        gone.append(lease.node_id)
                except BaseException:
                    # Keep the leases not yet expired in the store, so the next sweep retries.
                    for rest in expired[i:]:
                        self._leases.restore(rest)
                    raise
            await self.store.save_leases(self._leases.take_dirty())
            await self._compact()
        for node_id in gone:
            log.info("node %s is offline: its lease ran out", node_id)
        return gone

    async def _expire(self, lease: Lease, now: float) -> bool:
        node = await self.store.get_node(lease.node_id)
        if node is None or node.state is not NodeState.ONLINE:
            return False
        offline = replace(
            node,
            state=NodeState.OFFLINE,
            state_reason=(f"lease ran out: no heartbeat for {now - lease.last_heartbeat_at:.1f} s"),
            state_changed_at=now,
            last_heartbeat_at=lease.last_heartbeat_at,
            lease_expires_at=lease.expires_at,
            heartbeat_interval=lease.heartbeat_interval,
            load=lease.load,
        )
        _, changes = await self.store.commit(offline, [ChangeDraft(ChangeKind.NODE_OFFLINE, now)])
        self._publish(changes)
        return True

    async def _compact(self) -> None:
        revision = await self.store.revision()
        if revision - await self.store.compacted_revision() > self.change_retention:
            await self.store.compact(revision - self.change_retention)

    async def run_sweeper(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled; a failed sweep is logged and retried."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("registry sweep failed; retrying in %.1f s", interval)

    async def measure_service(self) -> dict[tuple[str, str], str]:
        """Measure every reported flow over the badge window (registryd/service_levels.py);
        the market view shows the measures. Returns the level each (node, flow) earns."""

        async def page(after: str) -> NodePage:
            return await self.list_nodes(NodeQuery(after_node_id=after), MAX_PAGE_SIZE)

        return await self.levels.measure_all(page, self.clock.now())

    # -- reads ---------------------------------------------------------------------------------

    async def get_node(self, node_id: str) -> NodeRecord:
        check_node_id(node_id)
        node = await self.store.get_node(node_id)
        if node is None:
            raise NodeNotFound(node_id)
        return self._live(node)

    async def list_nodes(self, query: NodeQuery, page_size: int = 0) -> NodePage:
        """A page of nodes, bounded in count and in bytes (registryd/paging.py)."""
        size = page_size_of(page_size)
        page = await node_page(self.store, query, size, await self.store.revision())
        return replace(page, nodes=[self._live(n) for n in page.nodes])

    async def get_flow_offer(self, node_id: str, flow_name: str) -> FlowOffer:
        node = await self.get_node(node_id)
        flow = node.flow(flow_name)
        if flow is None:
            raise FlowOfferNotFound(node_id, flow_name)
        return self.with_service(FlowOffer(flow, node))

    async def list_flow_offers(
        self,
        query: NodeQuery,
        page_size: int = 0,
        after: OfferKey | None = None,
        market: OfferFilter | None = None,
    ) -> tuple[FlowOfferPage, OfferKey | None]:
        """A page of offers ordered by flow name then node id, bounded in count and bytes
        (registryd/paging.py), and the key to continue after (None: the last page). `market`
        keeps only the offers passing the market view's filters (registryd/market.py)."""
        size = min(page_size, MAX_PAGE_SIZE) if page_size > 0 else MAX_PAGE_SIZE
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        revision = await self.store.revision()
        keep = None
        if market is not None and not market.empty:
            keep = OfferSieve(market, self.badges.levels, self.service).keep
        page, key = await offer_page(
            self.store, query, size, after, revision, self._live, keep=keep
        )
        return replace(page, offers=[self.with_service(o) for o in page.offers]), key

    def with_service(self, offer: FlowOffer) -> FlowOffer:
        """The offer with its measured service and badge level."""
        return self.service.describe(offer)

    async def open_watch(self, after_revision: int) -> Watch:
        """Check where a watch starts (so errors come before the stream) and open it.

        `after_revision` 0 starts at the oldest change still kept.
        """
        return await open_watch(self.store, self._feed, after_revision)

    # -- helpers -------------------------------------------------------------------------------

    def _live(self, node: NodeRecord) -> NodeRecord:
        """The stored node with its in-memory lease (heartbeats are persisted lazily)."""
        lease = self._leases.get(node.node_id)
        if lease is None or node.state is not NodeState.ONLINE:
            return node
        return replace(
            node,
            last_heartbeat_at=lease.last_heartbeat_at,
            lease_expires_at=lease.expires_at,
            heartbeat_interval=lease.heartbeat_interval,
            load=lease.load,
        )

    def _publish(self, changes: list[Change]) -> None:
        if changes:
            self._feed.publish(changes[-1].revision)


def _last_load(lease: Lease | None, before: NodeRecord | None) -> NodeLoad:
    if lease is not None:
        return lease.load
    return before.load if before is not None else NodeLoad()
