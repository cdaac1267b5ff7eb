"""An `EventStore` in one SQLite file (WAL): the node's durable executions and event streams.

Events are stored as the serialized `kodosumi.v1.Event` bytes the engine produced, keyed
by (execution_id, seq), so replay serves exactly what was emitted. Every batch is one
transaction: the events and the execution's status row change together, and a batch seen
twice (a node that crashed after storing but before acknowledging) is ignored by key.
Reads go through a second, read-only connection that sees committed transactions only.
A launch's inputs are stored once (`sqlite_schema.py`, `inputs_event.py`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from kodosumi import sqlite
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from kodosumid.event_store import sqlite_reads, sqlite_usage
from kodosumid.event_store.inputs_event import strip_inputs
from kodosumid.event_store.model import (
    DuplicateExecution,
    EndedRun,
    ExecutionRecord,
    Page,
    StatusChange,
    inputs_json,
)
from kodosumid.event_store.sqlite_batches import FRAME_BYTES, rows_of
from kodosumid.event_store.sqlite_schema import INSERT_ROW, create_or_upgrade, row_values
from kodosumid.event_store.store import REPLAY_PAGE_BYTES, REPLAY_PAGE_EVENTS
from kodosumid.event_store.usage_model import AttemptUsage, UsagePage, UsageQuery, UsageTotals

SYNCHRONOUS_MODES = sqlite.SYNCHRONOUS_MODES
_TERMINAL_MARKS = ", ".join(str(s) for s in sorted(TERMINAL))


class SqliteEventStore:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if synchronous not in sqlite.SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sqlite.SYNCHRONOUS_MODES}")
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

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("event store is not open")
        return self._reader

    async def open(self) -> None:
        self._db = await sqlite.connect(self.path, synchronous=self.synchronous)
        await create_or_upgrade(self._db)
        # Reads go through a connection of their own: in WAL mode it sees only committed
        # transactions, so nothing read for a watcher can be a batch still being written
        # (durable before visible), and reads never wait for the writer.
        self._reader = await sqlite.connect_reader(self.path)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            db = self.db
            try:
                # BEGIN inside the try: a writer cancelled while its BEGIN is queued (a
                # caller's deadline) still gets its ROLLBACK queued after it, instead of
                # leaving a transaction open that fails every later write.
                await db.execute("BEGIN")
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    # -- writes -----------------------------------------------------------------------------

    async def create_execution(
        self, record: ExecutionRecord, events: list[bytes], groups: Sequence[str] = ()
    ) -> None:
        """Insert a new execution with its first events (seq 1..n) in one transaction."""
        stored, stripped = strip_inputs(events, record.inputs)
        async with self._transaction() as db:
            try:
                await db.execute(INSERT_ROW, row_values(record, len(events), stripped))
            except sqlite3.IntegrityError:
                raise DuplicateExecution(record.execution_id) from None
            await db.execute(
                "INSERT OR REPLACE INTO execution_inputs (execution_id, inputs) VALUES (?, ?)",
                (record.execution_id, inputs_json(record.inputs)),
            )
            await db.executemany(
                "INSERT INTO events (execution_id, seq, data) VALUES (?, ?, ?)",
                [(record.execution_id, i + 1, data) for i, data in enumerate(stored)],
            )
            await sqlite_usage.keep_groups(db, record.execution_id, groups)

    async def append(
        self,
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
        usage: dict[str, list[AttemptUsage]] | None = None,
    ) -> None:
        """One transaction for the whole drain batch, its events as one row per execution
        (`sqlite_batches.py`); events already stored are kept as they are."""
        now = self._clock()
        async with self._transaction() as db:
            stored = await self._last_seqs(
                db, [eid for eid, (_, datas) in batches.items() if datas]
            )
            rows: list[tuple[str, int, int, bytes]] = []
            for execution_id, (first_seq, datas) in batches.items():
                # A batch seen again (re-sent after a crash) may overlap what is stored: only
                # the events after the stored end are new (each execution is written in order).
                skip = max(0, stored.get(execution_id, 0) - first_seq + 1)
                if skip < len(datas):
                    rows += rows_of(execution_id, first_seq + skip, datas[skip:])
            await db.executemany(
                "INSERT OR IGNORE INTO event_batches (execution_id, first_seq, last_seq, data) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            await db.executemany(
                "UPDATE executions SET last_seq = max(last_seq, ?) WHERE execution_id = ?",
                [(first + len(datas) - 1, eid) for eid, (first, datas) in batches.items() if datas],
            )
            for execution_id, changes in statuses.items():
                for change in changes:
                    await self._apply_status(db, execution_id, change, now)
            if usage:
                await sqlite_usage.write(db, usage)

    @staticmethod
    async def _last_seqs(db: aiosqlite.Connection, execution_ids: list[str]) -> dict[str, int]:
        if not execution_ids:
            return {}
        async with db.execute(
            "SELECT execution_id, last_seq FROM executions WHERE execution_id IN "
            f"({', '.join('?' * len(execution_ids))})",
            execution_ids,
        ) as cursor:
            return {str(eid): int(last) for eid, last in await cursor.fetchall()}

    @staticmethod
    async def _apply_status(
        db: aiosqlite.Connection, execution_id: str, change: StatusChange, now: int
    ) -> None:
        await db.execute(
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
        async with self._transaction() as db:
            await db.executemany("DELETE FROM events WHERE execution_id = ?", rows)
            await db.executemany("DELETE FROM event_batches WHERE execution_id = ?", rows)
            await db.executemany("DELETE FROM execution_inputs WHERE execution_id = ?", rows)
            await db.executemany("DELETE FROM executions WHERE execution_id = ?", rows)

    # -- reads ------------------------------------------------------------------------------

    async def ended_before(self, end_ns: int, limit: int = 500) -> list[str]:
        """Finished executions that ended before `end_ns` (oldest first)."""
        return [
            str(row[0])
            for row in await self.reader.execute_fetchall(
                f"SELECT execution_id FROM executions WHERE status IN ({_TERMINAL_MARKS}) "
                "AND end_ns > 0 AND end_ns < ? ORDER BY end_ns LIMIT ?",
                (end_ns, limit),
            )
        ]

    async def ended_since(self, since_ns: int, limit: int) -> list[EndedRun]:
        rows = await self.reader.execute_fetchall(
            f"SELECT flow, status, start_ns, end_ns FROM executions WHERE end_ns >= ? "
            f"AND status IN ({_TERMINAL_MARKS}) ORDER BY end_ns DESC LIMIT ?",
            (max(since_ns, 1), limit),
        )
        return [EndedRun(str(f), int(s), int(b), int(e)) for f, s, b, e in rows]

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        found = await sqlite_reads.records(self.reader, "WHERE execution_id = ?", (execution_id,))
        return found[0] if found else None

    async def read_page(
        self,
        execution_id: str,
        after_seq: int,
        max_events: int = REPLAY_PAGE_EVENTS,
        max_bytes: int = REPLAY_PAGE_BYTES,
    ) -> list[tuple[int, bytes]]:
        return await sqlite_reads.read_page(
            self.reader, execution_id, after_seq, max_events, max_bytes
        )

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int = 5000
    ) -> list[tuple[int, bytes]]:
        return await self.read_page(execution_id, after_seq, limit, REPLAY_PAGE_BYTES)

    async def stored_bytes(self, owner: str) -> int:
        """Bytes of the events stored for `owner`'s executions (the `stored_bytes` quota)."""
        # A stripped inputs event counts with its inputs (kept beside the row), as it replays.
        rows = list(
            await self.reader.execute_fetchall(
                "SELECT (SELECT COALESCE(SUM(length(e.data)), 0) FROM events e JOIN executions x "
                "ON e.execution_id = x.execution_id WHERE x.owner = ?) + "
                "(SELECT COALESCE(SUM(length(b.data) - ? * (b.last_seq - b.first_seq + 1)), 0) "
                "FROM event_batches b JOIN executions x ON b.execution_id = x.execution_id "
                "WHERE x.owner = ?) + "
                "(SELECT COALESCE(SUM(length(i.inputs)), 0) FROM execution_inputs i "
                "JOIN executions x ON i.execution_id = x.execution_id "
                "WHERE x.owner = ? AND x.inputs_seq > 0)",
                (owner, FRAME_BYTES, owner, owner),
            )
        )
        row = rows[0] if rows else None
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
        return await sqlite_reads.list_page(
            self.reader,
            owner=owner,
            statuses=statuses,
            flow=flow,
            page_size=page_size,
            page_token=page_token,
            max_bytes=max_bytes,
        )

    async def groups_of(self, execution_id: str) -> tuple[str, ...]:
        return await sqlite_usage.groups_of(self.reader, execution_id)

    async def usage_of(self, execution_id: str) -> list[AttemptUsage]:
        return await sqlite_usage.attempts_of(self.reader, execution_id)

    async def children_usage(self, execution_id: str) -> UsageTotals:
        found = await sqlite_usage.descendants(self.reader, execution_id)
        return await sqlite_usage.totals_of(self.reader, found)

    async def summarize_usage(self, query: UsageQuery) -> UsagePage:
        return await sqlite_usage.summarize(self.reader, query)

    async def unfinished(self) -> list[ExecutionRecord]:
        """Executions not in a terminal status (to re-attach or to close after a restart)."""
        return await sqlite_reads.records(self.reader, f"WHERE status NOT IN ({_TERMINAL_MARKS})")

    async def integrity_check(self) -> str:
        rows = list(await self.reader.execute_fetchall("PRAGMA integrity_check"))
        row = rows[0] if rows else None
        return str(row[0]) if row else ""
