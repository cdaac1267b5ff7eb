"""The registry's domain types: plain, frozen values that know nothing of gRPC or SQL.

Times are wall-clock seconds since the Unix epoch (floats), durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registryd.service_levels import ServiceMeasure
    from registryd.service_stats import ServiceReport


class NodeState(StrEnum):
    ONLINE = "online"
    # The lease ran out: kept and visible, never deleted.
    OFFLINE = "offline"
    # The node deregistered on purpose.
    LEFT = "left"


class ChangeKind(StrEnum):
    NODE_ONLINE = "node_online"
    NODE_OFFLINE = "node_offline"
    NODE_LEFT = "node_left"
    NODE_UPDATED = "node_updated"
    FLOW_ADDED = "flow_added"
    FLOW_REMOVED = "flow_removed"
    FLOW_UPDATED = "flow_updated"

    @property
    def about_node(self) -> bool:
        return self.value.startswith("node_")


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """A flow a node offers.

    `spec` is the node's `kodosumi.v1.Flow` message, serialized deterministically with its
    `node_id` filled in. The registry relays it verbatim, so fields added to `Flow` later pass
    through without a registry change; it only reads the name and tags for filtering.
    """

    name: str
    tags: tuple[str, ...]
    spec: bytes


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """Health data a node reports with each heartbeat (mirrors `kodosumi.v1.NodeLoad`)."""

    pending_executions: int = 0
    running_executions: int = 0
    awaiting_input_executions: int = 0
    executor_actors: int = 0
    warm_executors: int = 0
    watchers: int = 0
    uptime_seconds: float = 0.0
    load_average: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeAnnouncement:
    """What a node asserts about itself when it registers: its full state."""

    node_id: str
    endpoints: tuple[str, ...]
    flows: tuple[FlowEntry, ...]
    version: str = ""
    capabilities: tuple[str, ...] = ()
    # None: the registry's default interval.
    heartbeat_interval: float | None = None
    # None: not reported.
    load: NodeLoad | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    node_id: str
    # None: keep the interval announced before.
    heartbeat_interval: float | None = None
    load: NodeLoad | None = None
    # The node's per-flow service statistics (registryd/service_stats.py); None: none sent.
    stats: ServiceReport | None = None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as the registry stores it."""

    node_id: str
    identity: str
    endpoints: tuple[str, ...]
    flows: tuple[FlowEntry, ...]
    version: str
    capabilities: tuple[str, ...]
    state: NodeState
    state_reason: str
    load: NodeLoad
    first_registered_at: float
    state_changed_at: float
    last_heartbeat_at: float
    lease_expires_at: float
    heartbeat_interval: float
    # Revision of the last change to the node or its flows.
    revision: int = 0

    def flow(self, name: str) -> FlowEntry | None:
        return next((f for f in self.flows if f.name == name), None)


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The lease fields of a node, which heartbeats renew without a registry change."""

    node_id: str
    last_heartbeat_at: float
    lease_expires_at: float
    heartbeat_interval: float
    load: NodeLoad


@dataclass(frozen=True, slots=True)
class ChangeDraft:
    """A change about to be appended; the store gives it its revision."""

    kind: ChangeKind
    at: float
    # For FLOW_* changes: the flow after the change (before it, for FLOW_REMOVED).
    flow: FlowEntry | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log. Revisions start at 1 and grow by 1 per change."""

    revision: int
    kind: ChangeKind
    node_id: str
    at: float
    # For NODE_* changes: the node after the change, without its flows.
    node: NodeRecord | None = None
    flow: FlowEntry | None = None


@dataclass(frozen=True, slots=True)
class NodeQuery:
    """Which nodes to list. Flow filters match when one flow of the node matches all of them."""

    states: frozenset[NodeState] = frozenset()
    flow_tag: str = ""
    flow_name: str = ""
    # Keyset paging: only nodes whose id sorts after this one.
    after_node_id: str = ""
    # At most this many nodes; 0 for no limit.
    limit: int = 0

    def matches_flow(self, flow: FlowEntry) -> bool:
        return (not self.flow_name or flow.name == self.flow_name) and (
            not self.flow_tag or self.flow_tag in flow.tags
        )

    def matches(self, node: NodeRecord) -> bool:
        if self.states and node.state not in self.states:
            return False
        if self.after_node_id and node.node_id <= self.after_node_id:
            return False
        if self.flow_name or self.flow_tag:
            return any(self.matches_flow(f) for f in node.flows)
        return True


ALL_NODES = NodeQuery()


@dataclass(frozen=True, slots=True)
class NodePage:
    nodes: list[NodeRecord]
    # The node id to continue after, or "" on the last page.
    next_after: str
    # The answer reflects at least this revision.
    revision: int


@dataclass(frozen=True, slots=True)
class FlowOffer:
    flow: FlowEntry
    node: NodeRecord
    # What the registry measured of the flow on the node, and the badge level it holds.
    service: ServiceMeasure | None = None
    badge_level: str = ""
    badge_id: str = ""


@dataclass(frozen=True, slots=True)
class FlowOfferPage:
    offers: list[FlowOffer] = field(default_factory=list)
    revision: int = 0


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """What a node learns from RegisterNode and Heartbeat."""

    ttl: float
    heartbeat_interval: float
    expires_at: float
