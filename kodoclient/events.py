"""Facts about events and statuses that every client needs: terminal states, status names,
and which input requests of an execution are still open.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from kodosumi.v1 import event_pb2

Status: TypeAlias = event_pb2.ExecutionStatus.ValueType

_PREFIX = "EXECUTION_STATUS_"

TERMINAL_STATUSES: frozenset[Status] = frozenset(
    {
        event_pb2.EXECUTION_STATUS_SUCCEEDED,
        event_pb2.EXECUTION_STATUS_FAILED,
        event_pb2.EXECUTION_STATUS_CANCELLED,
        event_pb2.EXECUTION_STATUS_TIMED_OUT,
    }
)


def is_terminal(event: event_pb2.Event) -> bool:
    """Whether this is the status event that ends an execution (and its watch stream)."""
    return (
        event.WhichOneof("kind") == "status_changed"
        and event.status_changed.status in TERMINAL_STATUSES
    )


def status_name(status: int) -> str:
    """`RUNNING` for `EXECUTION_STATUS_RUNNING`; `UNKNOWN(42)` for a value newer than us."""
    try:
        return event_pb2.ExecutionStatus.Name(status).removeprefix(_PREFIX)  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({status})"


def parse_status(text: str) -> Status:
    """Accept `running`, `RUNNING`, `awaiting-input` or `EXECUTION_STATUS_RUNNING`."""
    name = text.strip().upper().replace("-", "_")
    if not name.startswith(_PREFIX):
        name = _PREFIX + name
    try:
        return event_pb2.ExecutionStatus.Value(name)
    except ValueError:
        known = ", ".join(status_names())
        raise ValueError(f"unknown status {text!r} (known: {known})") from None


def status_names() -> list[str]:
    return [
        status_name(v)
        for v in event_pb2.ExecutionStatus.values()
        if v != event_pb2.EXECUTION_STATUS_UNSPECIFIED
    ]


def open_input_requests(events: Iterable[event_pb2.Event]) -> list[event_pb2.InputRequested]:
    """The input requests not yet answered (nor timed out), oldest first.

    A terminal status closes every request: a finished execution awaits nothing.
    """
    open_requests: dict[str, event_pb2.InputRequested] = {}
    for event in events:
        kind = event.WhichOneof("kind")
        if kind == "input_requested":
            open_requests[event.input_requested.request_id] = event.input_requested
        elif kind == "input_provided":
            open_requests.pop(event.input_provided.request_id, None)
        elif is_terminal(event):
            open_requests.clear()
    return list(open_requests.values())
