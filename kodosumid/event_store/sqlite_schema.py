"""The event store's SQLite tables, their upgrade from earlier nodes, and rows to records.

`executions` holds one small row per execution, updated by every status change; its inputs
live in `execution_inputs` so that those updates never rewrite them (SQLite rewrites a whole
row, overflow pages included). `inputs_seq` names the event stored without its inputs
(`inputs_event.py`). Rows of earlier nodes kept their inputs in `executions.inputs`; they are
read from there (no rewrite on upgrade).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from kodosumid.event_store import sqlite_batches, sqlite_usage
from kodosumid.event_store.model import ExecutionRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    owner TEXT NOT NULL,
    status INTEGER NOT NULL,
    status_reason TEXT NOT NULL DEFAULT '',
    inputs TEXT NOT NULL DEFAULT '{}',
    create_ns INTEGER NOT NULL,
    start_ns INTEGER NOT NULL DEFAULT 0,
    end_ns INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    executor TEXT NOT NULL DEFAULT '',
    node_id TEXT NOT NULL DEFAULT '',
    trace_id TEXT NOT NULL DEFAULT '',
    parent_execution_id TEXT NOT NULL DEFAULT '',
    placement TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executions_newest ON executions (create_ns DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
-- Service statistics read the executions that ended in a window (newest first).
CREATE INDEX IF NOT EXISTS executions_ended ON executions (end_ns);
CREATE TABLE IF NOT EXISTS execution_inputs (
    execution_id TEXT PRIMARY KEY,
    inputs BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""

# The row without its inputs, then where they are: the stripped event's seq and their size.
ROW_COLUMNS = (
    "execution_id, flow, owner, status, status_reason, create_ns, start_ns, end_ns, "
    "last_seq, attempt, executor, node_id, trace_id, parent_execution_id, placement"
)
SELECT_ROWS = (
    f"SELECT {ROW_COLUMNS}, inputs_seq, COALESCE((SELECT length(i.inputs) FROM execution_inputs"
    " i WHERE i.execution_id = executions.execution_id), length(inputs)) FROM executions"
)
INSERT_ROW = f"INSERT INTO executions ({ROW_COLUMNS}, inputs_seq) VALUES ({', '.join('?' * 16)})"
SELECT_INPUTS = (
    "SELECT e.execution_id, COALESCE(i.inputs, e.inputs) FROM executions e "
    "LEFT JOIN execution_inputs i ON i.execution_id = e.execution_id WHERE e.execution_id IN "
)


async def create_or_upgrade(db: aiosqlite.Connection) -> None:
    await db.executescript(SCHEMA)
    await db.executescript(sqlite_batches.SCHEMA)
    await db.executescript(sqlite_usage.SCHEMA)
    async with db.execute("PRAGMA table_info(executions)") as cursor:
        columns = {str(row[1]) for row in await cursor.fetchall()}
    if "inputs_seq" not in columns:
        await db.execute("ALTER TABLE executions ADD COLUMN inputs_seq INTEGER NOT NULL DEFAULT 0")
    if "placement" not in columns:
        await db.execute("ALTER TABLE executions ADD COLUMN placement TEXT NOT NULL DEFAULT ''")


def row_values(record: ExecutionRecord, last_seq: int, inputs_seq: int) -> tuple[Any, ...]:
    return (
        record.execution_id,
        record.flow,
        record.owner,
        record.status,
        record.status_reason,
        record.create_ns,
        record.start_ns,
        record.end_ns,
        last_seq,
        record.attempt,
        record.executor,
        record.node_id,
        record.trace_id,
        record.parent_execution_id,
        record.placement,
        inputs_seq,
    )


def to_record(row: Sequence[Any], inputs: str | bytes = "{}") -> ExecutionRecord:
    """A record from a row of `SELECT_ROWS`, with its inputs (JSON) read separately."""
    values = list(row)[:15]
    return ExecutionRecord.from_row([*values[:5], inputs, *values[5:]])


def inputs_size(row: Sequence[Any]) -> int:
    return int(row[16] or 0)


def inputs_seq(row: Sequence[Any]) -> int:
    return int(row[15])
