"""Events the node writes itself (the executor's engine writes all others).

The node writes the first events of a launch and a status event whenever no executor writes
for an execution (not started yet, between attempts, executor gone, shutdown).
"""

from __future__ import annotations

from kodosumi.v1 import event_pb2


def status_event(
    execution_id: str,
    seq: int,
    attempt: int,
    status: int,
    *,
    time_unix_nano: int,
    reason: str = "",
    trace_ids: tuple[str, str] = ("", ""),
) -> bytes:
    event = event_pb2.Event(execution_id=execution_id, seq=seq, attempt=attempt)
    event.trace_id, event.span_id = trace_ids
    event.time_unix_nano = time_unix_nano
    event.status_changed.status = status  # type: ignore[assignment]
    event.status_changed.reason = reason
    return event.SerializeToString()
