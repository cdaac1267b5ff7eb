"""A `FileStore` in one SQLite file (WAL, 0600, opened by `kodosumi.sqlite`): the node's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi import sqlite
from kodosumid.files.model import Direction, FileLink, FileRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    create_ns INTEGER NOT NULL,
    expire_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_owner ON files (owner);
CREATE INDEX IF NOT EXISTS files_sha ON files (sha256);
CREATE INDEX IF NOT EXISTS files_expire ON files (expire_ns);
CREATE TABLE IF NOT EXISTS file_links (
    file_id TEXT NOT NULL REFERENCES files (file_id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (file_id, execution_id, direction, name)
);
CREATE INDEX IF NOT EXISTS file_links_execution ON file_links (execution_id);
CREATE TABLE IF NOT EXISTS file_grants (
    file_id TEXT NOT NULL REFERENCES files (file_id) ON DELETE CASCADE,
    grantee TEXT NOT NULL,
    PRIMARY KEY (file_id, grantee)
);
"""

_COLUMNS = "file_id, owner, name, media_type, size, sha256, create_ns, expire_ns"


def _record(row: Any) -> FileRecord:
    return FileRecord(*row)


class SqliteFileStore:
    def __init__(self, path: Path | None, *, synchronous: str = "NORMAL") -> None:
        # None: an in-memory database (tests).
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the file store is not open")
        return self._db

    async def open(self) -> None:
        self._db = await sqlite.connect(self.path, synchronous=self.synchronous, foreign_keys=True)
        await self._db.executescript(SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def put(self, record: FileRecord) -> FileRecord:
        async with self._lock:
            await self.db.execute(
                f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (file_id) DO UPDATE "
                "SET expire_ns = max(expire_ns, excluded.expire_ns)",
                (
                    record.file_id,
                    record.owner,
                    record.name,
                    record.media_type,
                    record.size,
                    record.sha256,
                    record.create_ns,
                    record.expire_ns,
                ),
            )
        stored = await self.get(record.file_id)
        assert stored is not None
        return stored

    async def get(self, file_id: str) -> FileRecord | None:
        async with self.db.execute(
            f"SELECT {_COLUMNS} FROM files WHERE file_id = ?", (file_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _record(row)

    async def delete(self, file_id: str) -> FileRecord | None:
        async with self._lock:
            record = await self.get(file_id)
            if record is not None:
                await self.db.execute("DELETE FROM files WHERE file_id = ?", (file_id,))
            return record

    async def link(self, link: FileLink) -> None:
        async with self._lock:
            await self.db.execute(
                "INSERT OR IGNORE INTO file_links (file_id, execution_id, direction, name) "
                "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM files WHERE file_id = ?)",
                (link.file_id, link.execution_id, link.direction, link.name, link.file_id),
            )

    async def links_of(self, file_id: str) -> list[FileLink]:
        rows = await self.db.execute_fetchall(
            "SELECT file_id, execution_id, direction, name FROM file_links WHERE file_id = ? "
            "ORDER BY execution_id, direction, name",
            (file_id,),
        )
        return [FileLink(*row) for row in rows]

    async def files_of(
        self, execution_id: str, direction: Direction | None = None
    ) -> list[tuple[FileLink, FileRecord]]:
        columns = ", ".join(f"f.{c.strip()}" for c in _COLUMNS.split(","))
        query = (
            f"SELECT l.file_id, l.execution_id, l.direction, l.name, {columns} "
            "FROM file_links l JOIN files f ON f.file_id = l.file_id WHERE l.execution_id = ?"
        )
        args: tuple[str, ...] = (execution_id,)
        if direction is not None:
            query += " AND l.direction = ?"
            args += (direction,)
        query += " ORDER BY l.direction != 'in', l.name, l.file_id"
        rows = await self.db.execute_fetchall(query, args)
        return [(FileLink(*row[:4]), _record(row[4:])) for row in rows]

    async def unlink_executions(self, execution_ids: Sequence[str]) -> list[str]:
        if not execution_ids:
            return []
        marks = ", ".join("?" for _ in execution_ids)
        async with self._lock:
            rows = await self.db.execute_fetchall(
                f"SELECT DISTINCT file_id FROM file_links WHERE execution_id IN ({marks})",
                tuple(execution_ids),
            )
            touched = [row[0] for row in rows]
            await self.db.execute(
                f"DELETE FROM file_links WHERE execution_id IN ({marks})", tuple(execution_ids)
            )
            left: list[str] = []
            for file_id in touched:
                async with self.db.execute(
                    "SELECT 1 FROM file_links WHERE file_id = ? LIMIT 1", (file_id,)
                ) as cursor:
                    if await cursor.fetchone() is None:
                        left.append(file_id)
        return sorted(left)

    async def expired(self, now_ns: int, limit: int = 500) -> list[str]:
        rows = await self.db.execute_fetchall(
            "SELECT file_id FROM files f WHERE expire_ns <= ? AND NOT EXISTS "
            "(SELECT 1 FROM file_links l WHERE l.file_id = f.file_id) "
            "ORDER BY expire_ns, file_id LIMIT ?",
            (now_ns, limit),
        )
        return [row[0] for row in rows]

    async def stored_bytes(self, owner: str) -> int:
        async with self.db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE owner = ?", (owner,)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def sha_in_use(self, sha256: str) -> bool:
        async with self.db.execute(
            "SELECT 1 FROM files WHERE sha256 = ? LIMIT 1", (sha256,)
        ) as cursor:
            return await cursor.fetchone() is not None

    async def grant(self, file_id: str, grantee: str) -> None:
        async with self._lock:
            await self.db.execute(
                "INSERT OR IGNORE INTO file_grants (file_id, grantee) "
                "SELECT ?, ? WHERE EXISTS (SELECT 1 FROM files WHERE file_id = ?)",
                (file_id, grantee, file_id),
            )

    async def granted(self, file_id: str, grantee: str) -> bool:
        async with self.db.execute(
            "SELECT 1 FROM file_grants WHERE file_id = ? AND grantee = ?", (file_id, grantee)
        ) as cursor:
            return await cursor.fetchone() is not None
