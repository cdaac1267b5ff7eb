"""The node's durable store of executions and their event streams (SQLite in WAL mode).

Events are stored as the serialized `kodosumi.v1.Event` bytes the engine produced, keyed
by (execution_id, seq), so replay serves exactly what was emitted. Every batch is one
transaction: the events and the execution's status row change together, and a batch seen
twice (a node that crashed after storing but before acknowledging) is ignored by key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2

TERMINAL = frozenset(
    {
        event_pb2.EXECUTION_STATUS_SUCCEEDED,
        event_pb2.EXECUTION_STATUS_FAILED,
        event_pb2.EXECUTION_STATUS_CANCELLED,
        event_pb2.EXECUTION_STATUS_TIMED_OUT,
    }
)
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_SCHEMA = """
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
    parent_execution_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executions_newest ON executions (create_ns DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""

_COLUMNS = (
    "execution_id, flow, owner, status, status_reason, inputs, create_ns, start_ns, end_ns, "
    "last_seq, attempt, executor, node_id, trace_id, parent_execution_id"
)


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

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> ExecutionRecord:
        values = list(row)
        values[5] = json.loads(values[5])
        return cls(*values)


@dataclass(frozen=True, slots=True)
class StatusChange:
    seq: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[ExecutionRecord]
    next_token: str


class EventStore:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        # One connection serves every writer (drain loops, launches): transactions must not
        # interleave on it.
        self._write_lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("event store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(f"PRAGMA synchronous={self.synchronous}")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.executescript(_SCHEMA)
        # Reads go through a connection of their own: in WAL mode it sees only committed
        # transactions, so nothing read for a watcher can be a batch still being written
        # (durable before visible), and reads never wait for the writer.
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=5000")
        await self._reader.execute("PRAGMA query_only=1")

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("event store is not open")
        return self._reader

    async def create_execution(self, record: ExecutionRecord, events: list[bytes]) -> None:
        """Insert a new execution with its first events (seq 1..n) in one transaction."""
        async with self._write_lock:
            await self._create(record, events)

    async def _create(self, record: ExecutionRecord, events: list[bytes]) -> None:
        db = self.db
        await db.execute("BEGIN")
        try:
            await db.execute(
                f"INSERT INTO executions ({_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                (
                    record.execution_id,
                    record.flow,
                    record.owner,
                    record.status,
                    record.status_reason,
                    json.dumps(record.inputs),
                    record.create_ns,
                    record.start_ns,
                    record.end_ns,
                    len(events),
                    record.attempt,
                    record.executor,
                    record.node_id,
                    record.trace_id,
                    record.parent_execution_id,
                ),
            )
            await db.executemany(
                "INSERT INTO events (execution_id, seq, data) VALUES (?, ?, ?)",
                [(record.execution_id, i + 1, data) for i, data in enumerate(events)],
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def append(
        self,
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
    ) -> None:
        """Store consecutive events per execution (`first_seq`, data) and their status changes.

        One transaction for the whole drain batch; events already stored are ignored.
        """
        rows = [
            (execution_id, first_seq + i, data)
            for execution_id, (first_seq, datas) in batches.items()
            for i, data in enumerate(datas)
        ]
        async with self._write_lock:
            await self._append(rows, batches, statuses)

    async def _append(
        self,
        rows: list[tuple[str, int, bytes]],
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
    ) -> None:
        now = time.time_ns()
        db = self.db
        await db.execute("BEGIN")
        try:
            await db.executemany(
                "INSERT OR IGNORE INTO events (execution_id, seq, data) VALUES (?, ?, ?)", rows
            )
            await db.executemany(
                "UPDATE executions SET last_seq = max(last_seq, ?) WHERE execution_id = ?",
                [(first + len(datas) - 1, eid) for eid, (first, datas) in batches.items() if datas],
            )
            for execution_id, changes in statuses.items():
                for change in changes:
                    await self._apply_status(execution_id, change, now)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def _apply_status(self, execution_id: str, change: StatusChange, now: int) -> None:
        await self.db.execute(
            """UPDATE executions SET status = ?, status_reason = ?,
                 start_ns = CASE WHEN start_ns = 0 AND ? = ? THEN ? ELSE start_ns END,
                 end_ns = CASE WHEN ? THEN ? ELSE end_ns END
               WHERE execution_id = ?""",
            (
                change.status,
                change.reason,
                change.status,
                event_pb2.EXECUTION_STATUS_RUNNING,
                now,
                change.status in TERMINAL,
                now,
                execution_id,
            ),
        )

    async def set_executor(self, execution_id: str, executor: str) -> None:
        async with self._write_lock:
            await self.db.execute(
                "UPDATE executions SET executor = ? WHERE execution_id = ?",
                (executor, execution_id),
            )

    async def set_attempt(self, execution_id: str, attempt: int) -> None:
        async with self._write_lock:
            await self.db.execute(
                "UPDATE executions SET attempt = ? WHERE execution_id = ?", (attempt, execution_id)
            )

    async def delete_executions(self, execution_ids: list[str]) -> None:
        """Remove executions and their events (freed pages are reused by later writes)."""
        if not execution_ids:
            return
        rows = [(eid,) for eid in execution_ids]
        async with self._write_lock:
            db = self.db
            await db.execute("BEGIN")
            try:
                await db.executemany("DELETE FROM events WHERE execution_id = ?", rows)
                await db.executemany("DELETE FROM executions WHERE execution_id = ?", rows)
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    async def ended_before(self, end_ns: int, limit: int = 500) -> list[str]:
        """Finished executions that ended before `end_ns` (oldest first)."""
        marks = ", ".join(str(s) for s in sorted(TERMINAL))
        async with self.reader.execute(
            f"SELECT execution_id FROM executions WHERE status IN ({marks}) AND end_ns > 0 "
            "AND end_ns < ? ORDER BY end_ns LIMIT ?",
            (end_ns, limit),
        ) as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        async with self.reader.execute(
            f"SELECT {_COLUMNS} FROM executions WHERE execution_id = ?", (execution_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return ExecutionRecord.from_row(row) if row else None

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int = 5000
    ) -> list[tuple[int, bytes]]:
        async with self.reader.execute(
            "SELECT seq, data FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (execution_id, after_seq, limit),
        ) as cursor:
            return [(int(seq), bytes(data)) for seq, data in await cursor.fetchall()]

    async def list_executions(
        self,
        *,
        owner: str | None,
        statuses: Iterable[int] = (),
        flow: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> Page:
        """Newest first, keyset-paged: the token names the last row of the previous page."""
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        status_list = list(statuses)
        if status_list:
            where.append(f"status IN ({', '.join('?' * len(status_list))})")
            params += status_list
        if flow:
            where.append("flow = ?")
            params.append(flow)
        if page_token:
            create_ns, execution_id = _decode_token(page_token)
            where.append("(create_ns < ? OR (create_ns = ? AND execution_id < ?))")
            params += [create_ns, create_ns, execution_id]
        sql = f"SELECT {_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY create_ns DESC, execution_id DESC LIMIT ?"
        params.append(page_size + 1)
        async with self.reader.execute(sql, params) as cursor:
            rows = [ExecutionRecord.from_row(r) for r in await cursor.fetchall()]
        token = ""
        if len(rows) > page_size:
            rows = rows[:page_size]
            token = _encode_token(rows[-1].create_ns, rows[-1].execution_id)
        return Page(rows, token)

    async def unfinished(self) -> list[ExecutionRecord]:
        """Executions not in a terminal status (to re-attach or to close after a restart)."""
        marks = ", ".join(str(s) for s in sorted(TERMINAL))
        async with self.reader.execute(
            f"SELECT {_COLUMNS} FROM executions WHERE status NOT IN ({marks})"
        ) as cursor:
            return [ExecutionRecord.from_row(r) for r in await cursor.fetchall()]

    async def integrity_check(self) -> str:
        async with self.reader.execute("PRAGMA integrity_check") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""


def _encode_token(create_ns: int, execution_id: str) -> str:
    return base64.urlsafe_b64encode(f"{create_ns}:{execution_id}".encode()).decode()


def _decode_token(token: str) -> tuple[int, str]:
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
