"""Reads of the registry bounded in bytes as well as in count.

A node's entry carries its whole catalog (each flow with its schemas: a registration may be
up to the 4 MiB a request carries), so a page of 100 nodes could be hundreds of MB, beyond
what a client accepts and what the registry should hold per call. Pages are read from the
store a few nodes at a time and end, with a token, once their bytes pass `max_bytes`; a node
larger than that still comes, alone.
"""

from __future__ import annotations

from dataclasses import replace

from registryd.model import NodePage, NodeQuery, NodeRecord
from registryd.store import NODE_SNAPSHOT_BYTES, RegistryStore

# Bytes of one ListNodes page, about: far below the 4 MiB clients accept by default.
LIST_PAGE_BYTES = 1024 * 1024
# Nodes read from the store at a time while a page fills.
STORE_BATCH = 8


def node_size(node: NodeRecord) -> int:
    """About what a node's entry takes on the wire: its flows' specs dominate."""
    return NODE_SNAPSHOT_BYTES + sum(len(f.spec) for f in node.flows)


async def node_page(
    store: RegistryStore,
    query: NodeQuery,
    size: int,
    revision: int,
    max_bytes: int = LIST_PAGE_BYTES,
) -> NodePage:
    """Up to `size` nodes after `query.after_node_id` and within `max_bytes` (at least one)."""
    nodes: list[NodeRecord] = []
    used, after = 0, query.after_node_id
    while True:
        want = min(STORE_BATCH, size - len(nodes))
        batch = await store.list_nodes(replace(query, after_node_id=after, limit=want + 1))
        for node in batch[:want]:
            cost = node_size(node)
            if nodes and used + cost > max_bytes:
                return NodePage(nodes, nodes[-1].node_id, revision)
            nodes.append(node)
            used += cost
        if len(batch) <= want:
            return NodePage(nodes, "", revision)
        if len(nodes) >= size:
            return NodePage(nodes, nodes[-1].node_id, revision)
        after = nodes[-1].node_id
