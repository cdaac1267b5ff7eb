"""Small builders for the event store tests: records, events and a settable clock."""

from __future__ import annotations

from typing import Any

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
    return message.SerializeToString()
