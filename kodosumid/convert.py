"""Domain objects to wire messages (and back) for the node's servicers."""

from __future__ import annotations

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.pricing import price_to_pb
from kodosumi.v1 import flow_pb2, node_pb2
from kodosumid.config import FlowEntry
from kodosumid.event_store import ExecutionRecord
from kodosumid.network.peers import Liveness, Peer, Source

_PEER_SOURCE = {
    Source.REGISTRY: node_pb2.PEER_SOURCE_REGISTRY,
    Source.LAN: node_pb2.PEER_SOURCE_LAN,
    Source.BOTH: node_pb2.PEER_SOURCE_BOTH,
}
# The registry's state names as the peer table keeps them ("": the registry does not list it).
_PEER_REGISTRY_STATE = {
    "ONLINE": node_pb2.PEER_REGISTRY_STATE_ONLINE,
    "OFFLINE": node_pb2.PEER_REGISTRY_STATE_OFFLINE,
    "LEFT": node_pb2.PEER_REGISTRY_STATE_LEFT,
}
_PEER_LIVENESS = {
    Liveness.UNKNOWN: node_pb2.PEER_LIVENESS_UNKNOWN,
    Liveness.ALIVE: node_pb2.PEER_LIVENESS_ALIVE,
    Liveness.DEAD: node_pb2.PEER_LIVENESS_DEAD,
}
_ISOLATION = {"shared": flow_pb2.ISOLATION_SHARED, "process": flow_pb2.ISOLATION_PROCESS}
# Keep each watch message well below the 4 MiB clients accept by default.
MAX_WATCH_MESSAGE_BYTES = 1024 * 1024


def flow_message(flow: FlowEntry, node_id: str) -> flow_pb2.Flow:
    message = flow_pb2.Flow(
        name=flow.name,
        entrypoint=flow.entrypoint,
        description=flow.description,
        tags=list(flow.tags),
        version=flow.version,
        timeout_seconds=flow.timeout_seconds,
        isolation=_ISOLATION[flow.isolation],  # type: ignore[arg-type]
        node_id=node_id,
        unavailable_reason=flow.unavailable,
    )
    dict_to_struct(flow.input_schema, message.input_schema)
    if flow.price is not None:
        price_to_pb(flow.price, message.price)
    return message


def execution_message(record: ExecutionRecord) -> flow_pb2.Execution:
    message = flow_pb2.Execution(
        execution_id=record.execution_id,
        flow=record.flow,
        status=record.status,  # type: ignore[arg-type]
        owner=record.owner,
        last_seq=record.last_seq,
        status_reason=record.status_reason,
        node_id=record.node_id,
        trace_id=record.trace_id,
        attempt=record.attempt,
        parent_execution_id=record.parent_execution_id,
    )
    message.create_time.FromNanoseconds(record.create_ns)
    if record.start_ns:
        message.start_time.FromNanoseconds(record.start_ns)
    if record.end_ns:
        message.end_time.FromNanoseconds(record.end_ns)
    dict_to_struct(record.inputs, message.inputs)
    return message


def watch_responses(events: list[bytes]) -> list[flow_pb2.WatchExecutionResponse]:
    """Batch serialized events into responses of bounded size, without re-encoding them.

    A repeated message field is the concatenation of its tagged, length-prefixed elements,
    so the response is parsed once from the stored bytes.
    """
    responses = []
    frame: list[bytes] = []
    size = 0
    for data in events:
        element = b"\x0a" + _varint(len(data)) + data
        if frame and size + len(element) > MAX_WATCH_MESSAGE_BYTES:
            responses.append(flow_pb2.WatchExecutionResponse.FromString(b"".join(frame)))
            frame, size = [], 0
        frame.append(element)
        size += len(element)
    if frame:
        responses.append(flow_pb2.WatchExecutionResponse.FromString(b"".join(frame)))
    return responses


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def peer_message(peer: Peer) -> node_pb2.Peer:
    """A peer table entry as `ListPeers` reports it."""
    message = node_pb2.Peer(
        node_id=peer.node_id,
        identity=peer.identity,
        version=peer.version,
        endpoints=list(peer.endpoints),
        source=_PEER_SOURCE[peer.source],
        registry_state=_PEER_REGISTRY_STATE.get(
            peer.registry_state, node_pb2.PEER_REGISTRY_STATE_UNSPECIFIED
        ),
        liveness=_PEER_LIVENESS[peer.liveness],
        liveness_reason=peer.liveness_reason,
        flow_names=sorted(peer.flows),
        routable=peer.routable,
    )
    if peer.load is not None:
        message.load.CopyFrom(peer.load)
    if peer.checked_wall_time:
        message.last_check_time.FromNanoseconds(round(peer.checked_wall_time * 1e9))
    return message
