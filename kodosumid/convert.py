"""Domain objects to wire messages (and back) for the node's servicers."""

from __future__ import annotations

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import flow_pb2
from kodosumid.config import FlowEntry
from kodosumid.event_store import ExecutionRecord

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
    )
    dict_to_struct(flow.input_schema, message.input_schema)
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
