"""A `RegistryStore` in one SQLite file (WAL), through aiosqlite.

Two connections: the writer runs each commit as one `BEGIN IMMEDIATE` transaction, the reader
only ever sees committed data (WAL snapshots), so a watcher never reads a change whose commit
could still fail. Node lists read nodes and their flows inside one read transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi import sqlite
from registryd.errors import RevisionCompacted
from registryd.model import (
    ALL_NODES,
    Change,
    ChangeDraft,
    FlowEntry,
    LeaseState,
    NodeQuery,
    NodeRecord,
)
from registryd.sqlite_rows import (
    NODE_COLUMNS,
    change_from_row,
    change_to_row,
    node_from_row,
    node_to_row,
)
from registryd.store import fitting, stamp

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    endpoints TEXT NOT NULL,
    version TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    load TEXT NOT NULL,
    first_registered_at REAL NOT NULL,
    state_changed_at REAL NOT NULL,
    last_heartbeat_at REAL NOT NULL,
    lease_expires_at REAL NOT NULL,
    heartbeat_interval REAL NOT NULL,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS flows (
    node_id TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    tags TEXT NOT NULL,
    spec BLOB NOT NULL,
    PRIMARY KEY (node_id, name)
);
CREATE INDEX IF NOT EXISTS flows_by_name ON flows (name);
CREATE TABLE IF NOT EXISTS changes (
    revision INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    node_id TEXT NOT NULL,
    at REAL NOT NULL,
    node TEXT,
    flow_name TEXT,
    flow_tags TEXT,
    flow_spec BLOB
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# SQLite's default limit on host parameters is far above this; keep IN lists modest anyway.
_CHUNK = 500


class SqliteStore:
    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._revision = 0
        self._compacted = 0

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        writer = await sqlite.connect(path, foreign_keys=True)
        try:
            version = await _scalar(writer, "PRAGMA user_version")
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path} holds registry schema {version}; this registryd knows {SCHEMA_VERSION}"
                )
            await writer.executescript(_SCHEMA)
            await writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            reader = await sqlite.connect_reader(path)
        except BaseException:
            await writer.close()
            raise
        store = cls(path, writer, reader)
        store._revision = max(
            await _scalar(writer, "SELECT COALESCE(MAX(revision), 0) FROM changes"),
            await store._meta(writer, "revision"),
        )
        store._compacted = await store._meta(writer, "compacted_revision")
        return store

    async def get_node(self, node_id: str) -> NodeRecord | None:
        async with self._snapshot():
            cursor = await self._reader.execute(
                f"SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = ?", (node_id,)
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            flows = await self._flows_of([node_id])
        return node_from_row(row, flows.get(node_id, ()))

    async def list_nodes(self, query: NodeQuery = ALL_NODES) -> list[NodeRecord]:
        where: list[str] = []
        params: list[Any] = []
        if query.states:
            states = sorted(query.states)
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params += states
        if query.after_node_id:
            where.append("node_id > ?")
            params.append(query.after_node_id)
        if query.flow_name or query.flow_tag:
            flow_where = ["f.node_id = nodes.node_id"]
            if query.flow_name:
                flow_where.append("f.name = ?")
                params.append(query.flow_name)
            if query.flow_tag:
                flow_where.append("EXISTS (SELECT 1 FROM json_each(f.tags) t WHERE t.value = ?)")
                params.append(query.flow_tag)
            where.append(f"EXISTS (SELECT 1 FROM flows f WHERE {' AND '.join(flow_where)})")
        sql = f"SELECT {NODE_COLUMNS} FROM nodes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY node_id"
        if query.limit:
            sql += " LIMIT ?"
            params.append(query.limit)
        async with self._snapshot():
            rows = list(await self._reader.execute_fetchall(sql, params))
            flows = await self._flows_of([row[0] for row in rows])
        return [node_from_row(row, flows.get(row[0], ())) for row in rows]

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[None]:
        """One read transaction on the reader, so a node and its flows come from one state."""
        async with self._read_lock:
            try:
                # BEGIN inside the try: a caller cancelled (deadline, hang-up) while its BEGIN
                # is queued still gets its COMMIT queued after it. Outside, the transaction
                # stayed open and every later read failed "within a transaction".
                await self._reader.execute("BEGIN")
                yield
            finally:
                await self._reader.execute("COMMIT")

    async def _flows_of(self, node_ids: Sequence[str]) -> dict[str, tuple[FlowEntry, ...]]:
        found: dict[str, list[FlowEntry]] = {}
        for i in range(0, len(node_ids), _CHUNK):
            chunk = node_ids[i : i + _CHUNK]
            rows = await self._reader.execute_fetchall(
                "SELECT node_id, name, tags, spec FROM flows "
                f"WHERE node_id IN ({', '.join('?' * len(chunk))}) ORDER BY node_id, position",
                chunk,
            )
            for node_id, name, tags, spec in rows:
                found.setdefault(node_id, []).append(FlowEntry(name, tuple(json.loads(tags)), spec))
        return {k: tuple(v) for k, v in found.items()}

    async def commit(
        self, node: NodeRecord, changes: Sequence[ChangeDraft]
    ) -> tuple[NodeRecord, list[Change]]:
        async with self._write_lock:
            saved, stamped = stamp(node, changes, self._revision + 1)
            async with self._transaction():
                await self._writer.execute(
                    f"INSERT OR REPLACE INTO nodes ({NODE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    node_to_row(saved),
                )
                await self._writer.execute("DELETE FROM flows WHERE node_id = ?", (node.node_id,))
                await self._writer.executemany(
                    "INSERT INTO flows (node_id, name, position, tags, spec) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (node.node_id, f.name, i, json.dumps(list(f.tags)), f.spec)
                        for i, f in enumerate(saved.flows)
                    ],
                )
                await self._writer.executemany(
                    "INSERT INTO changes (revision, kind, node_id, at, node, flow_name, flow_tags, "
                    "flow_spec) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [change_to_row(c) for c in stamped],
                )
                if stamped:
                    await self._set_meta("revision", stamped[-1].revision)
            self._revision += len(stamped)
        return saved, stamped

    async def save_leases(self, leases: Sequence[LeaseState]) -> None:
        if not leases:
            return
        async with self._write_lock, self._transaction():
            await self._writer.executemany(
                "UPDATE nodes SET last_heartbeat_at = ?, lease_expires_at = ?, "
                "heartbeat_interval = ?, load = ? WHERE node_id = ?",
                [
                    (
                        s.last_heartbeat_at,
                        s.lease_expires_at,
                        s.heartbeat_interval,
                        json.dumps(asdict(s.load)),
                        s.node_id,
                    )
                    for s in leases
                ],
            )

    async def changes_after(self, revision: int, limit: int, max_bytes: int = 0) -> list[Change]:
        if revision < self._compacted:
            raise RevisionCompacted(revision, self._compacted)
        async with self._read_lock:
            if max_bytes:
                # Sizes first (SQLite knows a value's length without reading it): a page of
                # large flow specs is cut before it is loaded.
                sizes = await self._reader.execute_fetchall(
                    "SELECT COALESCE(length(node), 0) + COALESCE(length(flow_spec), 0) "
                    "+ COALESCE(length(flow_tags), 0) FROM changes WHERE revision > ? "
                    "ORDER BY revision LIMIT ?",
                    (revision, limit),
                )
                limit = max(1, fitting([int(size) for (size,) in sizes], max_bytes))
            rows = await self._reader.execute_fetchall(
                "SELECT revision, kind, node_id, at, node, flow_name, flow_tags, flow_spec "
                "FROM changes WHERE revision > ? ORDER BY revision LIMIT ?",
                (revision, limit),
            )
        # Compaction may have run between the check above and the read, leaving a gap.
        if revision < self._compacted:
            raise RevisionCompacted(revision, self._compacted)
        return [change_from_row(row) for row in rows]

    async def revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    async def compact(self, through_revision: int) -> None:
        async with self._write_lock:
            through = min(through_revision, self._revision)
            if through <= self._compacted:
                return
            async with self._transaction():
                await self._writer.execute("DELETE FROM changes WHERE revision <= ?", (through,))
                await self._set_meta("compacted_revision", through)
                await self._set_meta("revision", self._revision)
            self._compacted = through

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._writer)

    async def _meta(self, conn: aiosqlite.Connection, key: str) -> int:
        cursor = await conn.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _set_meta(self, key: str, value: int) -> None:
        await self._writer.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when the body fails."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            await self._conn.execute("COMMIT")
        else:
            with contextlib.suppress(sqlite3.Error):
                await self._conn.execute("ROLLBACK")


async def _scalar(conn: aiosqlite.Connection, sql: str) -> int:
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
