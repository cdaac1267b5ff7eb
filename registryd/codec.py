"""Between the wire (`kodosumi.v1.registry_pb2`) and the domain types (`registryd.model`).

Decoding checks only what the domain cannot see (a flow naming another node); the domain
validates the rest.
"""

from __future__ import annotations

import base64
import binascii

from google.protobuf import duration_pb2, timestamp_pb2

from kodosumi.errors import InvalidArgument
from kodosumi.pricing import price_from_pb
from kodosumi.v1 import flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as pb
from registryd.config import BadgeLevel
from registryd.market import OfferFilter, offer_filter
from registryd.model import (
    Change,
    ChangeKind,
    FlowEntry,
    FlowOffer,
    Heartbeat,
    LeaseGrant,
    NodeAnnouncement,
    NodeLoad,
    NodeQuery,
    NodeRecord,
    NodeState,
)
from registryd.service_levels import ServiceMeasure
from registryd.service_stats import FlowStats, ServiceReport
from registryd.validate import MAX_FLOWS

_STATE_TO_PB = {
    NodeState.ONLINE: pb.REGISTERED_NODE_STATE_ONLINE,
    NodeState.OFFLINE: pb.REGISTERED_NODE_STATE_OFFLINE,
    NodeState.LEFT: pb.REGISTERED_NODE_STATE_LEFT,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
_KIND_TO_PB = {
    ChangeKind.NODE_ONLINE: pb.REGISTRY_CHANGE_KIND_NODE_ONLINE,
    ChangeKind.NODE_OFFLINE: pb.REGISTRY_CHANGE_KIND_NODE_OFFLINE,
    ChangeKind.NODE_LEFT: pb.REGISTRY_CHANGE_KIND_NODE_LEFT,
    ChangeKind.NODE_UPDATED: pb.REGISTRY_CHANGE_KIND_NODE_UPDATED,
    ChangeKind.FLOW_ADDED: pb.REGISTRY_CHANGE_KIND_FLOW_ADDED,
    ChangeKind.FLOW_REMOVED: pb.REGISTRY_CHANGE_KIND_FLOW_REMOVED,
    ChangeKind.FLOW_UPDATED: pb.REGISTRY_CHANGE_KIND_FLOW_UPDATED,
}


# -- small values -------------------------------------------------------------------------------


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def seconds_of(message: duration_pb2.Duration) -> float:
    return message.ToNanoseconds() / 1e9


def load_from_pb(load: node_pb2.NodeLoad) -> NodeLoad:
    return NodeLoad(
        pending_executions=load.pending_executions,
        running_executions=load.running_executions,
        awaiting_input_executions=load.awaiting_input_executions,
        executor_actors=load.executor_actors,
        warm_executors=load.warm_executors,
        watchers=load.watchers,
        uptime_seconds=load.uptime_seconds,
        load_average=load.load_average,
    )


def load_to_pb(load: NodeLoad) -> node_pb2.NodeLoad:
    return node_pb2.NodeLoad(
        pending_executions=load.pending_executions,
        running_executions=load.running_executions,
        awaiting_input_executions=load.awaiting_input_executions,
        executor_actors=load.executor_actors,
        warm_executors=load.warm_executors,
        watchers=load.watchers,
        uptime_seconds=load.uptime_seconds,
        load_average=load.load_average,
    )


def states_from_pb(
    states: list[pb.RegisteredNodeState.ValueType], field: str
) -> frozenset[NodeState]:
    found = set()
    for i, state in enumerate(states):
        if state not in _STATE_FROM_PB:
            raise InvalidArgument.field(f"{field}[{i}]", "must be ONLINE, OFFLINE or LEFT")
        found.add(_STATE_FROM_PB[state])
    return frozenset(found)


# -- flows --------------------------------------------------------------------------------------


def flow_entry(flow: flow_pb2.Flow, node_id: str, index: int) -> FlowEntry:
    """The flow as the registry keeps it: the node's message, with `node_id` filled in."""
    if flow.node_id and flow.node_id != node_id:
        raise InvalidArgument.field(
            f"flows[{index}].node_id", f"must be empty or {node_id!r}, not {flow.node_id!r}"
        )
    if flow.HasField("price"):
        # The registry shows prices to the whole network: a node's price is checked, not
        # trusted (negative, malformed or overflowing amounts, unknown currency shapes).
        price_from_pb(flow.price, f"flows[{index}].price")
    normalized = flow_pb2.Flow()
    normalized.CopyFrom(flow)
    normalized.node_id = node_id
    return FlowEntry(
        name=flow.name,
        tags=tuple(flow.tags),
        spec=normalized.SerializeToString(deterministic=True),
    )


def flow_to_pb(entry: FlowEntry) -> flow_pb2.Flow:
    return flow_pb2.Flow.FromString(entry.spec)


# -- requests -----------------------------------------------------------------------------------


def announcement_from_pb(request: pb.RegisterNodeRequest) -> NodeAnnouncement:
    return NodeAnnouncement(
        node_id=request.node_id,
        endpoints=tuple(request.endpoints),
        flows=tuple(flow_entry(f, request.node_id, i) for i, f in enumerate(request.flows)),
        version=request.version,
        capabilities=tuple(request.capabilities),
        heartbeat_interval=(
            seconds_of(request.heartbeat_interval)
            if request.HasField("heartbeat_interval")
            else None
        ),
        load=load_from_pb(request.load) if request.HasField("load") else None,
    )


def stats_from_pb(stats: pb.ServiceStats) -> ServiceReport:
    if len(stats.flows) > MAX_FLOWS:
        # Before decoding: a hostile node's million entries cost nothing but this check.
        raise InvalidArgument.field("service_stats.flows", f"at most {MAX_FLOWS}")
    return ServiceReport(
        window=seconds_of(stats.window),
        flows=tuple(
            FlowStats(
                flow=f.flow,
                runs=f.runs,
                successes=f.successes,
                failures=f.failures,
                p50_seconds=f.p50_seconds,
                p95_seconds=f.p95_seconds,
            )
            for f in stats.flows
        ),
    )


def heartbeat_from_pb(request: pb.HeartbeatRequest) -> Heartbeat:
    return Heartbeat(
        stats=stats_from_pb(request.service_stats) if request.HasField("service_stats") else None,
        node_id=request.node_id,
        heartbeat_interval=(
            seconds_of(request.heartbeat_interval)
            if request.HasField("heartbeat_interval")
            else None
        ),
        load=load_from_pb(request.load) if request.HasField("load") else None,
    )


def node_query_from_pb(request: pb.ListNodesRequest) -> NodeQuery:
    return NodeQuery(
        states=states_from_pb(list(request.states), "states"),
        flow_tag=request.flow_tag,
        flow_name=request.flow_name,
        after_node_id=decode_page_token(request.page_token),
    )


def offer_query_from_pb(request: pb.ListFlowOffersRequest) -> NodeQuery:
    return NodeQuery(
        states=states_from_pb(list(request.node_states), "node_states"),
        flow_tag=request.tag,
        flow_name=request.flow_name,
    )


def market_filter_from_pb(
    request: pb.ListFlowOffersRequest, levels: dict[str, BadgeLevel]
) -> OfferFilter:
    return offer_filter(
        text=request.text,
        max_price=request.max_price,
        currency=request.currency,
        min_badge_level=request.min_badge_level,
        max_p95=seconds_of(request.max_p95) if request.HasField("max_p95") else None,
        levels=levels,
    )


_TOKEN_PREFIX = b"after:"


def encode_page_token(after_node_id: str) -> str:
    if not after_node_id:
        return ""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + after_node_id.encode()).decode()


def decode_page_token(token: str) -> str:
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if not raw.startswith(_TOKEN_PREFIX):
            raise ValueError(token)
        return raw[len(_TOKEN_PREFIX) :].decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.field("page_token", "not a token this registry handed out") from None


def encode_offer_token(after: tuple[str, str] | None) -> str:
    """A ListFlowOffers token: the (flow name, node id) of the last offer sent."""
    return encode_page_token(f"{after[0]}\0{after[1]}") if after else ""


def decode_offer_token(token: str) -> tuple[str, str] | None:
    text = decode_page_token(token)
    if not text:
        return None
    name, sep, node_id = text.partition("\0")
    if not sep:
        raise InvalidArgument.field("page_token", "not a token this registry handed out")
    return name, node_id


# -- responses ----------------------------------------------------------------------------------


def node_to_pb(node: NodeRecord) -> pb.RegisteredNode:
    return pb.RegisteredNode(
        node_id=node.node_id,
        identity=node.identity,
        endpoints=node.endpoints,
        flows=[flow_to_pb(f) for f in node.flows],
        version=node.version,
        capabilities=node.capabilities,
        state=_STATE_TO_PB[node.state],
        state_reason=node.state_reason,
        load=load_to_pb(node.load),
        first_register_time=timestamp(node.first_registered_at),
        state_change_time=timestamp(node.state_changed_at),
        last_heartbeat_time=timestamp(node.last_heartbeat_at),
        lease_expire_time=timestamp(node.lease_expires_at),
        heartbeat_interval=duration(node.heartbeat_interval),
        revision=node.revision,
    )


def lease_to_pb(grant: LeaseGrant) -> pb.NodeLease:
    return pb.NodeLease(
        ttl=duration(grant.ttl),
        heartbeat_interval=duration(grant.heartbeat_interval),
        expire_time=timestamp(grant.expires_at),
    )


def service_to_pb(measure: ServiceMeasure | None, level: str, badge_id: str) -> pb.ServiceLevel:
    message = pb.ServiceLevel(badge_level=level, badge_id=badge_id)
    if measure is not None:
        message.runs = measure.runs
        message.successes = measure.successes
        message.failures = measure.failures
        message.success_rate = measure.success_rate
        message.p50_seconds = measure.p50_seconds
        message.p95_seconds = measure.p95_seconds
        message.availability = measure.availability
        message.window.CopyFrom(duration(measure.window_seconds))
        message.report_time.CopyFrom(timestamp(measure.reported_at))
    return message


def offer_to_pb(offer: FlowOffer) -> pb.FlowOffer:
    message = pb.FlowOffer(
        flow=flow_to_pb(offer.flow),
        node_state=_STATE_TO_PB[offer.node.state],
        endpoints=offer.node.endpoints,
        node_load=load_to_pb(offer.node.load),
    )
    if offer.service is not None or offer.badge_level:
        message.service.CopyFrom(service_to_pb(offer.service, offer.badge_level, offer.badge_id))
    return message


def change_to_pb(change: Change) -> pb.RegistryChange:
    message = pb.RegistryChange(
        revision=change.revision,
        kind=_KIND_TO_PB[change.kind],
        node_id=change.node_id,
        time=timestamp(change.at),
    )
    if change.node is not None:
        message.node.CopyFrom(node_to_pb(change.node))
    if change.flow is not None:
        message.flow.CopyFrom(flow_to_pb(change.flow))
    return message
