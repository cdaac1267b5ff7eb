"""Leases: the lease rules (interval bounds, TTL) and the in-memory table of live leases.

The lease table is the registry's authority on liveness while it runs: a heartbeat renews a
lease in memory only, and the registry persists dirty leases in batches on each sweep. A crash
loses at most one sweep interval of renewals, which the restart grace period covers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kodosumi.errors import InvalidArgument
from registryd.config import LeaseConfig
from registryd.model import LeaseGrant, LeaseState, NodeLoad, NodeRecord


class LeaseRules:
    """Turns the interval a node asks for into a lease, or refuses it."""

    def __init__(self, config: LeaseConfig) -> None:
        self.config = config

    def interval(self, requested: float | None, fallback: float | None = None) -> float:
        """The heartbeat interval to use; InvalidArgument naming `heartbeat_interval` when the
        node asks for one outside the bounds. None asks for `fallback`, else the default."""
        if requested is None:
            return fallback if fallback is not None else self.config.default_heartbeat_interval
        low, high = self.config.min_heartbeat_interval, self.config.max_heartbeat_interval
        if not low <= requested <= high:
            raise InvalidArgument.field(
                "heartbeat_interval",
                f"must be between {low:g} s and {high:g} s, not {requested:g} s",
            )
        return requested

    def ttl(self, interval: float) -> float:
        """How long a lease lasts without a heartbeat: a few missed heartbeats are tolerated."""
        return interval * self.config.ttl_factor

    def grant(self, interval: float, now: float) -> LeaseGrant:
        ttl = self.ttl(interval)
        return LeaseGrant(ttl=ttl, heartbeat_interval=interval, expires_at=now + ttl)


@dataclass(slots=True)
class Lease:
    """The live lease of one ONLINE node (mutable: heartbeats renew it in place)."""

    node_id: str
    heartbeat_interval: float
    last_heartbeat_at: float
    expires_at: float
    load: NodeLoad
    dirty: bool = False
    # The node's registered flows: its service statistics may name these only.
    flows: frozenset[str] = frozenset()

    def state(self) -> LeaseState:
        return LeaseState(
            node_id=self.node_id,
            last_heartbeat_at=self.last_heartbeat_at,
            lease_expires_at=self.expires_at,
            heartbeat_interval=self.heartbeat_interval,
            load=self.load,
        )


class LeaseTable:
    """Live leases by node id; holds an entry exactly for the nodes that are ONLINE."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def __iter__(self) -> Iterator[Lease]:
        return iter(list(self._leases.values()))

    def get(self, node_id: str) -> Lease | None:
        return self._leases.get(node_id)

    def put(self, record: NodeRecord) -> Lease:
        """Hold the lease a stored record describes (fresh registration or restart)."""
        lease = Lease(
            node_id=record.node_id,
            heartbeat_interval=record.heartbeat_interval,
            last_heartbeat_at=record.last_heartbeat_at,
            expires_at=record.lease_expires_at,
            load=record.load,
            flows=frozenset(f.name for f in record.flows),
        )
        self._leases[record.node_id] = lease
        return lease

    def restore(self, lease: Lease) -> None:
        """Hold a lease taken out by `pop_expired` again (its expiry could not be recorded)."""
        self._leases.setdefault(lease.node_id, lease)

    def drop(self, node_id: str) -> None:
        self._leases.pop(node_id, None)

    @staticmethod
    def renew(lease: Lease, grant: LeaseGrant, now: float, load: NodeLoad | None) -> None:
        lease.heartbeat_interval = grant.heartbeat_interval
        lease.last_heartbeat_at = now
        lease.expires_at = grant.expires_at
        if load is not None:
            lease.load = load
        lease.dirty = True

    def pop_expired(self, now: float) -> list[Lease]:
        """Remove and return the leases that ran out by `now`."""
        expired = [lease for lease in self._leases.values() if lease.expires_at <= now]
        for lease in expired:
            del self._leases[lease.node_id]
        return expired

    def take_dirty(self) -> list[LeaseState]:
        """The leases renewed since the last call, marked clean."""
        dirty = []
        for lease in self._leases.values():
            if lease.dirty:
                lease.dirty = False
                dirty.append(lease.state())
        return dirty
