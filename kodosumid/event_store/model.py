"""What the event store holds: execution rows, status changes, pages, and the paging token.

Plain frozen dataclasses shared by every `EventStore` implementation and by the domain.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kodosumi.errors import InvalidArgument
from kodosumi.statuses import TERMINAL

# The fixed part of a listed execution on the wire (ids, names, times, status words), beside
# its inputs and reason; byte-bounded pages count it so that many tiny rows are bounded too.
RECORD_OVERHEAD_BYTES = 256


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_id: str
    flow: str
    owner: str
    status: int
    status_reason: str
    inputs: dict[str, Any]
    create_ns: int
    start_ns: int = 0
    end_ns: int = 0
    last_seq: int = 0
    attempt: int = 1
    executor: str = ""
    node_id: str = ""
    trace_id: str = ""
    parent_execution_id: str = ""
    # The launch's own placement over its flow's, as JSON ('': none), kept so that a node
    # that restarts dispatches the launch where it was asked to run
    # (`kodosumid/executors/placement.py` reads and writes it).
    placement: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> ExecutionRecord:
        values = list(row)
        values[5] = json.loads(values[5])
        return cls(*values)


def record_size(record: ExecutionRecord, inputs_bytes: int) -> int:
    """About what a record costs in a listing response (`inputs_bytes`: its inputs as JSON)."""
    text = (
        record.execution_id,
        record.flow,
        record.owner,
        record.status_reason,
        record.node_id,
        record.trace_id,
        record.parent_execution_id,
    )
    return RECORD_OVERHEAD_BYTES + inputs_bytes + sum(len(t) for t in text)


def inputs_json(inputs: dict[str, Any]) -> bytes:
    """Inputs as stored and sized: compact UTF-8 JSON."""
    return json.dumps(inputs, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class StatusChange:
    seq: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[ExecutionRecord]
    next_token: str


def encode_token(create_ns: int, execution_id: str) -> str:
    return base64.urlsafe_b64encode(f"{create_ns}:{execution_id}".encode()).decode()


def decode_token(token: str) -> tuple[int, str]:
    """The (create_ns, execution_id) of the last row of the previous page."""
    try:
        create_ns, _, execution_id = (
            base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        )
        value = int(create_ns)
    except (ValueError, UnicodeDecodeError):
        value = -1
    if not 0 <= value < 2**63 or not execution_id:
        raise InvalidArgument.field("page_token", "not a token this node issued")
    return value, execution_id


@dataclass(frozen=True, slots=True)
class EndedRun:
    """What service statistics need of a finished execution (`EventStore.ended_since`)."""

    flow: str
    status: int
    start_ns: int
    end_ns: int


class DuplicateExecution(Exception):
    """`create_execution` of an id the store already holds (an internal fault, not a client's)."""
