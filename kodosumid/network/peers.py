"""The peers this node knows: merged from the registry and from LAN discovery, each entry
saying where it came from, with liveness from this node's own health checks.

Sources only say a peer exists and what it offers; whether it answers is decided by health
checks (`kodosumid/network/peer_health.py`): a registry lease can outlive a crashed node by its TTL,
and an mDNS record by an hour. Routing uses a peer that answered its last check, or — until
the first check — one the registry lists ONLINE or the LAN announces.

Plain data, no I/O: the registry feed, the LAN browser and the health monitor write here,
the execution manager and the flow servicer read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kodosumi.v1 import flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"
LEFT = "LEFT"
_STATE_PREFIX = "REGISTERED_NODE_STATE_"


class Source(StrEnum):
    REGISTRY = "registry"
    LAN = "lan"
    BOTH = "both"


class Liveness(StrEnum):
    UNKNOWN = "unknown"  # not checked yet
    ALIVE = "alive"  # answered its last health check
    DEAD = "dead"  # did not


@dataclass(frozen=True, slots=True)
class LanAnnouncement:
    """What a peer's zeroconf service says about it (TXT record and addresses)."""

    node_id: str
    endpoints: tuple[str, ...]
    identity: str = ""
    version: str = ""
    flows_digest: str = ""


@dataclass(frozen=True, slots=True)
class Probe:
    """One health check of a peer: whether it answered, where, and what it said of itself."""

    alive: bool
    endpoint: str
    reason: str
    info: node_pb2.NodeInfo | None = None


@dataclass(eq=False)
class Peer:
    node_id: str
    identity: str = ""
    version: str = ""
    # The registry's view; `registry_state` is empty when the registry does not list it.
    registry_state: str = ""
    registry_endpoints: tuple[str, ...] = ()
    registry_flows: dict[str, flow_pb2.Flow] = field(default_factory=dict)
    lan: LanAnnouncement | None = None
    # Fetched from the peer itself (GetNodeInfo), for peers known from the LAN only.
    node_flows: dict[str, flow_pb2.Flow] | None = None
    node_flows_digest: str = ""
    load: node_pb2.NodeLoad | None = None
    liveness: Liveness = Liveness.UNKNOWN
    liveness_reason: str = ""
    checked_at: float = 0.0
    # When the checks began to fail (this node's clock; 0: it answered its last check).
    dead_since: float = 0.0
    # The same moment on the wall clock (epoch seconds), for people and ListPeers.
    checked_wall_time: float = 0.0
    # The endpoint that answered the last health check (tried first).
    good_endpoint: str = ""

    @property
    def source(self) -> Source:
        if self.registry_state and self.lan is not None:
            return Source.BOTH
        return Source.LAN if self.lan is not None else Source.REGISTRY

    @property
    def endpoints(self) -> tuple[str, ...]:
        found = [self.good_endpoint] if self.good_endpoint else []
        found += self.registry_endpoints
        found += self.lan.endpoints if self.lan is not None else ()
        return tuple(dict.fromkeys(e for e in found if e))

    @property
    def flows(self) -> dict[str, flow_pb2.Flow]:
        return self.node_flows if self.node_flows is not None else self.registry_flows

    @property
    def routable(self) -> bool:
        if self.registry_state == LEFT and self.lan is None:
            return False  # it left on purpose, even if it still answers
        if self.liveness is Liveness.UNKNOWN:
            return self.registry_state == ONLINE or self.lan is not None
        return self.liveness is Liveness.ALIVE

    @property
    def needs_node_info(self) -> bool:
        """A LAN peer whose flows are unknown here, or changed since they were fetched."""
        if self.lan is None:
            return False
        return self.node_flows is None or self.lan.flows_digest != self.node_flows_digest

    @property
    def busy(self) -> int:
        load = self.load
        if load is None:
            return 0
        return load.pending_executions + load.running_executions + load.awaiting_input_executions


def flows_digest(flows: Iterable[flow_pb2.Flow]) -> str:
    """A short digest of a flow catalog (as announced on the LAN): equal catalogs, equal digests."""
    h = hashlib.sha256()
    for flow in sorted(flows, key=lambda f: f.name):
        h.update(flow.SerializeToString(deterministic=True))
    return h.hexdigest()[:16]


def state_name(state: int) -> str:
    return rpb.RegisteredNodeState.Name(state).removeprefix(_STATE_PREFIX)  # type: ignore[arg-type]


class PeerTable:
    def __init__(self, own_node_id: str, on_change: Callable[[str], None] | None = None) -> None:
        self.own_node_id = own_node_id
        self.on_change = on_change
        self._peers: dict[str, Peer] = {}

    def get(self, node_id: str) -> Peer | None:
        return self._peers.get(node_id)

    def entries(self) -> list[Peer]:
        return [self._peers[k] for k in sorted(self._peers)]

    def __len__(self) -> int:
        return len(self._peers)

    def _entry(self, node_id: str) -> Peer | None:
        if not node_id or node_id == self.own_node_id:
            return None
        if node_id not in self._peers:
            self._peers[node_id] = Peer(node_id)
        return self._peers[node_id]

    def _changed(self, node_id: str) -> None:
        peer = self._peers.get(node_id)
        if peer is not None and not peer.registry_state and peer.lan is None:
            del self._peers[node_id]  # no source lists it any more
        if self.on_change is not None:
            self.on_change(node_id)

    # -- the registry -------------------------------------------------------------------------

    def registry_reset(self, nodes: Iterable[rpb.RegisteredNode]) -> None:
        """The registry's full list (after ListNodes): replaces everything it said before."""
        nodes = list(nodes)
        listed = {n.node_id for n in nodes}
        for node_id in [p.node_id for p in self._peers.values() if p.registry_state]:
            if node_id not in listed:
                gone = self._peers[node_id]
                gone.registry_state, gone.registry_endpoints, gone.registry_flows = "", (), {}
                self._changed(node_id)
        for node in nodes:
            peer = self._entry(node.node_id)
            if peer is not None:
                peer.registry_flows = {f.name: f for f in node.flows}
                self.registry_node(node)

    def registry_node(self, node: rpb.RegisteredNode) -> None:
        """A node as the registry reports it (its flows travel separately)."""
        peer = self._entry(node.node_id)
        if peer is None:
            return
        peer.registry_state = state_name(node.state)
        peer.registry_endpoints = tuple(node.endpoints)
        peer.identity = node.identity or peer.identity
        peer.version = node.version or peer.version
        if node.HasField("load") and peer.liveness is not Liveness.ALIVE:
            peer.load = node.load
        self._changed(node.node_id)

    def registry_flow(self, flow: flow_pb2.Flow, *, removed: bool = False) -> None:
        peer = self._peers.get(flow.node_id)
        if peer is None or not peer.registry_state:
            return  # a flow change for a node this table does not hold from the registry
        if removed:
            peer.registry_flows.pop(flow.name, None)
        else:
            peer.registry_flows[flow.name] = flow
        self._changed(flow.node_id)

    # -- the LAN ------------------------------------------------------------------------------

    def lan_seen(self, announcement: LanAnnouncement) -> None:
        peer = self._entry(announcement.node_id)
        if peer is None:
            return
        if peer.lan is None and peer.liveness is Liveness.DEAD:
            # Announced anew (restarted, or back after it was forgotten): check it afresh
            # rather than forget it again on the strength of old failures.
            peer.liveness, peer.dead_since = Liveness.UNKNOWN, 0.0
        peer.lan = announcement
        peer.identity = announcement.identity or peer.identity
        peer.version = announcement.version or peer.version
        self._changed(announcement.node_id)

    def lan_gone(self, node_id: str) -> None:
        peer = self._peers.get(node_id)
        if peer is None or peer.lan is None:
            return
        peer.lan, peer.node_flows, peer.node_flows_digest = None, None, ""
        self._changed(node_id)

    def lan_stale(self, now: float, forget_after: float) -> list[str]:
        """LAN announcements to forget: peers whose checks failed for `forget_after` seconds,
        or that fail them while the registry says they are OFFLINE or LEFT (its lease ran
        out, or it left). mDNS says nothing of a crash; these two do."""
        stale = []
        for peer in self._peers.values():
            if peer.lan is None or peer.liveness is not Liveness.DEAD:
                continue
            confirmed = peer.registry_state in (OFFLINE, LEFT)
            if confirmed or now - peer.dead_since >= forget_after:
                stale.append(peer.node_id)
        return sorted(stale)

    # -- this node's own checks ---------------------------------------------------------------

    def checked(self, node_id: str, *, alive: bool, reason: str, at: float, endpoint: str) -> None:
        peer = self._peers.get(node_id)
        if peer is None:
            return
        peer.liveness = Liveness.ALIVE if alive else Liveness.DEAD
        if alive:
            peer.dead_since = 0.0
        elif not peer.dead_since:
            peer.dead_since = at
        peer.liveness_reason, peer.checked_at = reason, at
        peer.checked_wall_time = time.time()
        peer.good_endpoint = endpoint if alive else ""

    def node_info(self, node_id: str, info: node_pb2.NodeInfo) -> None:
        """What the peer said about itself (GetNodeInfo): its flows and load."""
        peer = self._peers.get(node_id)
        if peer is None:
            return
        peer.node_flows = {f.name: f for f in info.flows}
        peer.node_flows_digest = flows_digest(info.flows)
        peer.load = info.load
        peer.identity = info.identity or peer.identity
        peer.version = info.version or peer.version

    # -- routing ------------------------------------------------------------------------------

    def candidates(self, flow_name: str) -> list[Peer]:
        """Peers to launch `flow_name` on, best first: checked alive, least busy, by id."""
        found = [p for p in self._peers.values() if p.routable and flow_name in p.flows]
        return sorted(found, key=lambda p: (p.liveness is not Liveness.ALIVE, p.busy, p.node_id))

    def remote_flow(self, name: str) -> flow_pb2.Flow | None:
        """The flow as the peer a launch would go to offers it (`node_id` names that peer)."""
        found = self.candidates(name)
        if not found:
            return None
        flow = flow_pb2.Flow()
        flow.CopyFrom(found[0].flows[name])
        flow.node_id = found[0].node_id
        return flow

    def remote_flows(self, tag: str = "", exclude: Iterable[str] = ()) -> list[flow_pb2.Flow]:
        """One entry per flow name some routable peer offers (and `exclude` does not name)."""
        skip = set(exclude)
        names = {n for p in self._peers.values() if p.routable for n in p.flows} - skip
        flows = [f for n in sorted(names) if (f := self.remote_flow(n)) is not None]
        return [f for f in flows if not tag or tag in f.tags]
