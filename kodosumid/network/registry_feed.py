"""Follow the registry into the peer table: list once, then watch from that revision.

As `docs/registry.md` prescribes for readers: `ListNodes` (note the revision), then
`WatchRegistry(after_revision)`; after a break, watch again from the last revision seen;
when the registry no longer keeps that revision (`REVISION_COMPACTED`) or never had it
(`REVISION_IN_FUTURE`, a wiped registry), list again. While the registry is away the table
keeps what it last said, and health checks keep judging those peers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

from kodosumi.errors import KodosumiError
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.network.backoff import Backoff, TimeSource
from kodosumid.network.peers import PeerTable

log = logging.getLogger(__name__)

RELIST_REASONS = frozenset({"REVISION_COMPACTED", "REVISION_IN_FUTURE"})
_FLOW_REMOVED = rpb.REGISTRY_CHANGE_KIND_FLOW_REMOVED
_FLOW_KINDS = frozenset(
    {rpb.REGISTRY_CHANGE_KIND_FLOW_ADDED, rpb.REGISTRY_CHANGE_KIND_FLOW_UPDATED, _FLOW_REMOVED}
)


class RegistryReader(Protocol):
    async def list_nodes(self) -> tuple[list[rpb.RegisteredNode], int]:
        """Every node (all pages) and the revision the answer reflects."""
        ...

    def watch(self, after_revision: int) -> AsyncIterator[tuple[list[rpb.RegistryChange], int]]:
        """Batches of changes after `after_revision`, in order, until the stream breaks."""
        ...


def apply_change(table: PeerTable, change: rpb.RegistryChange) -> None:
    if change.kind in _FLOW_KINDS:
        flow = change.flow
        if not flow.node_id:
            flow.node_id = change.node_id
        table.registry_flow(flow, removed=change.kind == _FLOW_REMOVED)
    elif change.HasField("node"):
        table.registry_node(change.node)


class RegistryFeed:
    def __init__(
        self,
        registry: RegistryReader,
        table: PeerTable,
        backoff: Backoff,
        time: TimeSource | None = None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.backoff = backoff
        self.time = time or TimeSource()
        # The last registry revision applied to the table; None: list (again) first.
        self.revision: int | None = None
        self.last_error = ""

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                if self.revision is None:
                    nodes, revision = await self.registry.list_nodes()
                    self.table.registry_reset(nodes)
                    self.revision = revision
                async for changes, _ in self.registry.watch(self.revision):
                    for change in changes:
                        apply_change(self.table, change)
                        self.revision = change.revision
                    attempt, self.last_error = 0, ""
            except KodosumiError as e:
                if e.reason in RELIST_REASONS:
                    log.info("registry watch cannot resume (%s); listing again", e.reason)
                    self.revision = None
                    continue
                if e.message != self.last_error:
                    log.info("registry feed interrupted: %s", e.message)
                self.last_error = e.message
            # A stream that ended or broke: resume after a pause (the registry may be away).
            await self.time.sleep(self.backoff.delay(attempt, self.time.random))
            attempt += 1
