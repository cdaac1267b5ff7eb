"""The registry's state interface. Two implementations hold it: `memory_store.MemoryStore`
(tests, throwaway registries) and `sqlite_store.SqliteStore` (the daemon). One contract test
suite (`tests/registry/test_store_contract.py`) runs against both.

The store keeps node records and the change log. It assigns revisions: `commit` saves a node
and appends its changes in one atomic step, so no reader sees one without the other. It is
a single-writer store: one registry process owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from registryd.model import ALL_NODES, Change, ChangeDraft, LeaseState, NodeQuery, NodeRecord


class RegistryStore(Protocol):
    async def get_node(self, node_id: str) -> NodeRecord | None: ...

    async def list_nodes(self, query: NodeQuery = ALL_NODES) -> list[NodeRecord]:
        """Nodes matching `query`, ordered by node id, each with its flows in the node's order."""
        ...

    async def commit(
        self, node: NodeRecord, changes: Sequence[ChangeDraft]
    ) -> tuple[NodeRecord, list[Change]]:
        """Save `node` (replacing what is stored, flows included) and append `changes`, atomically.

        Each change gets the next revision; the saved node's `revision` becomes the last of them
        (it stays as given when there are no changes). Returns the saved node and the changes.
        """
        ...

    async def save_leases(self, leases: Sequence[LeaseState]) -> None:
        """Update the lease fields of stored nodes (no revision; unknown nodes are skipped)."""
        ...

    async def changes_after(self, revision: int, limit: int, max_bytes: int = 0) -> list[Change]:
        """Up to `limit` changes with a revision above `revision`, oldest first; with
        `max_bytes`, only as many as fit in that many bytes (`change_size`), at least one.

        Raises `RevisionCompacted` when changes right after `revision` are no longer kept.
        """
        ...

    async def revision(self) -> int:
        """The revision of the last change ever appended (0 for none)."""
        ...

    async def compacted_revision(self) -> int:
        """Changes up to this revision have been dropped (0 for none)."""
        ...

    async def compact(self, through_revision: int) -> None:
        """Drop the changes up to `through_revision` (never beyond the current revision)."""
        ...

    async def close(self) -> None: ...


def stamp(
    node: NodeRecord, drafts: Sequence[ChangeDraft], first_revision: int
) -> tuple[NodeRecord, list[Change]]:
    """Give drafts their revisions and the node its new revision (shared by the stores)."""
    if not drafts:
        return node, []
    last = first_revision + len(drafts) - 1
    saved = replace(node, revision=last)
    snapshot = replace(saved, flows=())
    changes = [
        Change(
            revision=first_revision + i,
            kind=d.kind,
            node_id=node.node_id,
            at=d.at,
            node=replace(snapshot, revision=first_revision + i) if d.kind.about_node else None,
            flow=d.flow,
        )
        for i, d in enumerate(drafts)
    ]
    return saved, changes


# What a node snapshot in the change log takes, about (its JSON: ids, endpoints, load).
NODE_SNAPSHOT_BYTES = 512


def change_size(change: Change) -> int:
    """About what one change takes in memory and on the wire: its flow spec dominates."""
    size = NODE_SNAPSHOT_BYTES if change.node is not None else 0
    if change.flow is not None:
        size += len(change.flow.spec) + sum(len(t) for t in change.flow.tags)
    return size


def fitting(sizes: Sequence[int], max_bytes: int) -> int:
    """How many leading items of `sizes` fit into `max_bytes` together; at least one, so
    that one item larger than the bound still goes (alone)."""
    total = 0
    for i, size in enumerate(sizes):
        total += size
        if total > max_bytes and i:
            return i
    return len(sizes)
