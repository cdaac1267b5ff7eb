"""Small builders for the event store tests: records, events and a settable clock."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import event_pb2
from kodosumid.event_store import ExecutionRecord


class FakeClock:
    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def record(
    execution_id: str,
    *,
    flow: str = "hello",
    owner: str = "spiffe://test.kodosumi/user/alice",
    inputs: dict[str, Any] | None = None,
    create_ns: int = 1,
    last_seq: int = 0,
) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=execution_id,
        flow=flow,
        owner=owner,
        status=event_pb2.EXECUTION_STATUS_PENDING,
        status_reason="",
        inputs=inputs if inputs is not None else {},
        create_ns=create_ns,
        last_seq=last_seq,
    )


def event(execution_id: str, seq: int, text: str = "") -> bytes:
    """A serialized stdout event (its text tells versions of one seq apart)."""
    message = event_pb2.Event(execution_id=execution_id, seq=seq, attempt=1)
    message.output_line.text = text or f"line {seq}"
    return message.SerializeToString()


def inputs_event(execution_id: str, inputs: dict[str, Any], seq: int = 2) -> bytes:
    """The event a node writes at launch to show the inputs (as `executions/launch.py` does)."""
    message = event_pb2.Event(execution_id=execution_id, seq=seq, attempt=1)
    message.time_unix_nano = 1_700_000_000_000_000_000
    message.inputs_received.inputs.SetInParent()
    dict_to_struct(inputs, message.inputs_received.inputs)
    message.trace_id, message.span_id = "a" * 32, "b" * 16
    return message.SerializeToString(deterministic=True)


def inputs_event_in_reverse_key_order(execution_id: str, inputs: dict[str, float]) -> bytes:
    """An inputs event whose Struct entries are on the wire in reverse key order (as a hash
    table may write them), hand-encoded since protobuf itself picks the order."""
    entries = b""
    for key in sorted(inputs, reverse=True):
        one = struct_pb2.Struct()
        one.fields[key].number_value = inputs[key]
        entries += one.SerializeToString()
    inputs_number = event_pb2.InputsReceived.DESCRIPTOR.fields_by_name["inputs"].number
    received = _field(inputs_number, entries)
    received_number = event_pb2.Event.DESCRIPTOR.fields_by_name["inputs_received"].number
    head = event_pb2.Event(execution_id=execution_id, seq=2, attempt=1).SerializeToString()
    return head + _field(received_number, received)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field on the wire: tag, length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
