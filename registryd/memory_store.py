"""A `RegistryStore` in memory: for tests and registries that need not survive a restart."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace

from registryd.errors import RevisionCompacted
from registryd.model import ALL_NODES, Change, ChangeDraft, LeaseState, NodeQuery, NodeRecord
from registryd.store import change_size, fitting, stamp


class MemoryStore:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeRecord] = {}
        self._changes: list[Change] = []
        self._revision = 0
        self._compacted = 0

    async def get_node(self, node_id: str) -> NodeRecord | None:
        return self._nodes.get(node_id)

    async def list_nodes(self, query: NodeQuery = ALL_NODES) -> list[NodeRecord]:
        found = [self._nodes[k] for k in sorted(self._nodes) if query.matches(self._nodes[k])]
        return found[: query.limit] if query.limit else found

    async def commit(
        self, node: NodeRecord, changes: Sequence[ChangeDraft]
    ) -> tuple[NodeRecord, list[Change]]:
        saved, stamped = stamp(node, changes, self._revision + 1)
        self._nodes[node.node_id] = saved
        self._changes += stamped
        self._revision += len(stamped)
        return saved, stamped

    async def save_leases(self, leases: Sequence[LeaseState]) -> None:
        for lease in leases:
            node = self._nodes.get(lease.node_id)
            if node is not None:
                self._nodes[lease.node_id] = replace(
                    node,
                    last_heartbeat_at=lease.last_heartbeat_at,
                    lease_expires_at=lease.lease_expires_at,
                    heartbeat_interval=lease.heartbeat_interval,
                    load=lease.load,
                )

    async def changes_after(self, revision: int, limit: int, max_bytes: int = 0) -> list[Change]:
        if revision < self._compacted:
            raise RevisionCompacted(revision, self._compacted)
        start = bisect.bisect_right(self._changes, revision, key=lambda c: c.revision)
        page = self._changes[start : start + limit]
        if max_bytes:
            page = page[: fitting([change_size(c) for c in page], max_bytes)]
        return page

    async def revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    async def compact(self, through_revision: int) -> None:
        through = min(through_revision, self._revision)
        if through <= self._compacted:
            return
        start = bisect.bisect_right(self._changes, through, key=lambda c: c.revision)
        del self._changes[:start]
        self._compacted = through

    async def close(self) -> None:
        pass
