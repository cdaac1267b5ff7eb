"""Reads of the registry bounded in bytes as well as in count.

A node's entry carries its whole catalog (each flow with its schemas: a registration may be
up to the 4 MiB a request carries), so a page of 100 nodes could be hundreds of MB, beyond
what a client accepts and what the registry should hold per call. Pages are read from the
store a few nodes at a time and end, with a token, once their bytes pass `max_bytes`; a node
larger than that still comes, alone. Flow offers are ordered by flow name across all nodes:
their page is kept while the nodes are scanned a few at a time, so a call holds one page and
one batch of nodes, never the whole registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kodosumi.errors import InvalidArgument
from registryd.model import FlowOffer, FlowOfferPage, NodePage, NodeQuery, NodeRecord
from registryd.store import NODE_SNAPSHOT_BYTES, RegistryStore

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Bytes of one ListNodes page, about: far below the 4 MiB clients accept by default.
LIST_PAGE_BYTES = 1024 * 1024
# Nodes read from the store at a time while a page fills.
STORE_BATCH = 8


def page_size_of(requested: int) -> int:
    """The nodes a page may hold: the caller's `page_size`, defaulted and capped."""
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


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


# (flow name, node id) of the last offer a page sent: the next page starts after it.
OfferKey = tuple[str, str]


def _offer_key(offer: FlowOffer) -> OfferKey:
    return (offer.flow.name, offer.node.node_id)


def _offer_size(offer: FlowOffer) -> int:
    return NODE_SNAPSHOT_BYTES + len(offer.flow.spec)


def _page_prefix(offers: list[FlowOffer], size: int, max_bytes: int) -> list[FlowOffer]:
    used = 0
    for i, offer in enumerate(offers[:size]):
        used += _offer_size(offer)
        if used > max_bytes and i:
            return offers[:i]
    return offers[:size]


async def offer_page(
    store: RegistryStore,
    query: NodeQuery,
    size: int,
    after: OfferKey | None,
    revision: int,
    live: Callable[[NodeRecord], NodeRecord],
    max_bytes: int = LIST_PAGE_BYTES,
    keep: Callable[[FlowOffer], bool] | None = None,
) -> tuple[FlowOfferPage, OfferKey | None]:
    """The offers after `after`, ordered by (flow name, node id): at most `size` and about
    `max_bytes` (at least one); with the key to continue after, or None on the last page."""
    kept: list[FlowOffer] = []
    more = False
    cursor = ""
    while True:
        batch = await store.list_nodes(replace(query, after_node_id=cursor, limit=STORE_BATCH))
        for node in map(live, batch):
            # The offer needs the node's state, endpoints and load, not its catalog.
            bare = replace(node, flows=())
            found = [
                FlowOffer(flow, bare)
                for flow in node.flows
                if query.matches_flow(flow) and (after is None or (flow.name, node.node_id) > after)
            ]
            # The market view's filters (registryd/market.py), before the page is cut.
            kept += [o for o in found if keep(o)] if keep is not None else found
        kept.sort(key=_offer_key)
        page = _page_prefix(kept, size, max_bytes)
        more = more or len(page) < len(kept)
        kept = page
        if len(batch) < STORE_BATCH:
            break
        cursor = batch[-1].node_id
    return FlowOfferPage(kept, revision), (_offer_key(kept[-1]) if more and kept else None)
