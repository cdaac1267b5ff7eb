"""Execution statuses in words, and which of them end an execution: one home for the node,
the engine, the registry's clients and the SDK.

The wire enum (`kodosumi.v1.event_pb2.ExecutionStatus`) names values `EXECUTION_STATUS_X`;
people and logs say `X`. Terminal statuses end an execution and its watch streams for good;
an attempt also ends on RETRYING (another attempt follows).
"""

from __future__ import annotations

from typing import TypeAlias

from kodosumi.v1 import event_pb2

Status: TypeAlias = event_pb2.ExecutionStatus.ValueType

PREFIX = "EXECUTION_STATUS_"

TERMINAL: frozenset[Status] = frozenset(
    {
        event_pb2.EXECUTION_STATUS_SUCCEEDED,
        event_pb2.EXECUTION_STATUS_FAILED,
        event_pb2.EXECUTION_STATUS_CANCELLED,
        event_pb2.EXECUTION_STATUS_TIMED_OUT,
    }
)
# Statuses that end an attempt: the terminal ones, and RETRYING (another attempt follows).
ATTEMPT_ENDING: frozenset[Status] = TERMINAL | {event_pb2.EXECUTION_STATUS_RETRYING}


def is_terminal_event(event: event_pb2.Event) -> bool:
    """Whether this is the status event that ends an execution (and its watch stream)."""
    return event.WhichOneof("kind") == "status_changed" and event.status_changed.status in TERMINAL


def status_word(status: int, unknown: str | None = None) -> str:
    """`RUNNING` for `EXECUTION_STATUS_RUNNING`; for a value newer than this code, `unknown`
    if given, else `UNKNOWN(42)`."""
    try:
        name = event_pb2.ExecutionStatus.Name(status)  # type: ignore[arg-type]
    except ValueError:
        return unknown if unknown is not None else f"UNKNOWN({status})"
    return name.removeprefix(PREFIX)


def status_words() -> list[str]:
    """Every status a client may name (UNSPECIFIED is none)."""
    return [
        status_word(v)
        for v in event_pb2.ExecutionStatus.values()
        if v != event_pb2.EXECUTION_STATUS_UNSPECIFIED
    ]


def parse_status(text: str) -> Status:
    """Accept `running`, `RUNNING`, `awaiting-input` or `EXECUTION_STATUS_RUNNING`."""
    name = text.strip().upper().replace("-", "_")
    if not name.startswith(PREFIX):
        name = PREFIX + name
    try:
        return event_pb2.ExecutionStatus.Value(name)
    except ValueError:
        known = ", ".join(status_words())
        raise ValueError(f"unknown status {text!r} (known: {known})") from None
