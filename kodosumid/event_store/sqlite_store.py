"""An `EventStore` in one SQLite file (WAL): the node's durable executions and event streams.

Events are stored as the serialized `kodosumi.v1.Event` bytes the engine produced, keyed
by (execution_id, seq), so replay serves exactly what was emitted. Every batch is one
transaction: the events and the execution's status row change together, and a batch seen
twice (a node that crashed after storing but before acknowledging) is ignored by key.
Reads go through a second, read-only connection that sees committed transactions only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi.v1 import event_pb2
from kodosumid.event_store.model import (
    TERMINAL,
    DuplicateExecution,
    ExecutionRecord,
    Page,
    StatusChange,
    decode_token,
    encode_token,
    inputs_json,
    record_size,
)
from kodosumid.event_store.store import REPLAY_PAGE_BYTES, REPLAY_PAGE_EVENTS

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
_COLUMNS_NO_INPUTS = _COLUMNS.replace(" inputs,", "")
_CHUNK = 500


class SqliteEventStore:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = path
        self.synchronous = synchronous
        self._clock = clock
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
            try:
                await self._insert_row(record, len(events))
            except sqlite3.IntegrityError:
                raise DuplicateExecution(record.execution_id) from None
            await db.executemany(
                "INSERT INTO events (execution_id, seq, data) VALUES (?, ?, ?)",
                [(record.execution_id, i + 1, data) for i, data in enumerate(events)],
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def _insert_row(self, record: ExecutionRecord, last_seq: int) -> None:
        await self.db.execute(
            f"INSERT INTO executions ({_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            (
                record.execution_id,
                record.flow,
                record.owner,
                record.status,
                record.status_reason,
                inputs_json(record.inputs),
                record.create_ns,
                record.start_ns,
                record.end_ns,
                last_seq,
                record.attempt,
                record.executor,
                record.node_id,
                record.trace_id,
                record.parent_execution_id,
            ),
        )

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
        now = self._clock()
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

    async def read_page(
        self,
        execution_id: str,
        after_seq: int,
        max_events: int = REPLAY_PAGE_EVENTS,
        max_bytes: int = REPLAY_PAGE_BYTES,
    ) -> list[tuple[int, bytes]]:
        # Sizes first (length() of a blob reads no overflow pages), then only the chosen
        # range's data: a page never loads more than it returns.
        async with self.reader.execute(
            "SELECT seq, length(data) FROM events WHERE execution_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (execution_id, after_seq, max(max_events, 1)),
        ) as cursor:
            sizes = [(int(seq), int(size)) for seq, size in await cursor.fetchall()]
        if not sizes:
            return []
        last, total = sizes[0]
        for seq, size in sizes[1:]:
            total += size
            if total > max_bytes:
                break
            last = seq
        async with self.reader.execute(
            "SELECT seq, data FROM events WHERE execution_id = ? AND seq > ? AND seq <= ? "
            "ORDER BY seq",
            (execution_id, after_seq, last),
        ) as cursor:
            return [(int(seq), bytes(data)) for seq, data in await cursor.fetchall()]

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int = 5000
    ) -> list[tuple[int, bytes]]:
        return await self.read_page(execution_id, after_seq, limit, REPLAY_PAGE_BYTES)

    async def stored_bytes(self, owner: str) -> int:
        """Bytes of the events stored for `owner`'s executions (the `stored_bytes` quota)."""
        async with self.reader.execute(
            "SELECT COALESCE(SUM(length(e.data)), 0) FROM events e JOIN executions x "
            "ON e.execution_id = x.execution_id WHERE x.owner = ?",
            (owner,),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def list_executions(
        self,
        *,
        owner: str | None,
        statuses: Iterable[int] = (),
        flow: str = "",
        page_size: int = 50,
        page_token: str = "",
        max_bytes: int = 0,
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
            create_ns, execution_id = decode_token(page_token)
            where.append("(create_ns < ? OR (create_ns = ? AND execution_id < ?))")
            params += [create_ns, create_ns, execution_id]
        # The rows without their inputs first (only their length), then the inputs of the
        # rows that fit: a page of executions with large inputs never loads more than it holds.
        sql = f"SELECT {_COLUMNS_NO_INPUTS}, length(inputs) FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY create_ns DESC, execution_id DESC LIMIT ?"
        params.append(page_size + 1)
        async with self.reader.execute(sql, params) as cursor:
            rows = list(await cursor.fetchall())
        more = len(rows) > page_size
        rows = rows[:page_size]
        if max_bytes:
            total = 0
            for i, row in enumerate(rows):
                total += record_size(_without_inputs(row), int(row[-1]))
                if total > max_bytes and i > 0:
                    rows, more = rows[:i], True
                    break
        inputs = await self._inputs_of([str(row[0]) for row in rows])
        records = [_without_inputs(row, inputs.get(str(row[0]), "{}")) for row in rows]
        token = ""
        if more and records:
            token = encode_token(records[-1].create_ns, records[-1].execution_id)
        return Page(records, token)

    async def _inputs_of(self, execution_ids: list[str]) -> dict[str, str | bytes]:
        found: dict[str, str | bytes] = {}
        for start in range(0, len(execution_ids), _CHUNK):
            chunk = execution_ids[start : start + _CHUNK]
            async with self.reader.execute(
                "SELECT execution_id, inputs FROM executions WHERE execution_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            ) as cursor:
                found.update((str(eid), text) for eid, text in await cursor.fetchall())
        return found

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


def _without_inputs(row: Iterable[Any], inputs: str | bytes = "{}") -> ExecutionRecord:
    """A record from a row of `_COLUMNS_NO_INPUTS` (and whatever follows), with `inputs`."""
    values = list(row)[:14]
    return ExecutionRecord.from_row([*values[:5], inputs, *values[5:]])
