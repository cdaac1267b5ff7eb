"""Facts about events and statuses that every client needs: terminal states, status names,
and which input requests of an execution are still open.
"""

from __future__ import annotations

from collections.abc import Iterable

from kodosumi.statuses import TERMINAL, Status, parse_status, status_word, status_words
from kodosumi.statuses import is_terminal_event as is_terminal
from kodosumi.v1 import event_pb2

# The SDK's public names for the shared vocabulary (`kodosumi/statuses.py`).
TERMINAL_STATUSES: frozenset[Status] = TERMINAL
status_name = status_word
status_names = status_words

__all__ = [
    "TERMINAL_STATUSES",
    "Status",
    "is_terminal",
    "open_input_requests",
    "parse_status",
    "status_name",
    "status_names",
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
