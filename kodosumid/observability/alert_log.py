"""The node's operator stream: every alert it raised, kept in `<state>/alerts.sqlite` (the
newest `keep`), and followed live by `WatchAlerts` streams.

Alerts get their own gapless `seq` on this node, so a follower resumes after the last one it
saw, across node restarts. Like execution events, an alert is stored before any follower or
webhook sees it. A follower too slow for its queue is dropped from live delivery and catches
up from the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from kodosumi import sqlite
from kodosumi.v1 import event_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""
READ_BATCH = 500


class _Follower:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(size)
        self.lagging = False
        self.wakeup = asyncio.Event()

    def offer(self, seq: int, data: bytes) -> None:
        if self.lagging:
            return
        try:
            self.queue.put_nowait((seq, data))
        except asyncio.QueueFull:
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
        self.wakeup.set()


class AlertLog:
    def __init__(self, path: Path | None, keep: int = 1000, follower_queue: int = 256) -> None:
        # None: in memory only (tests of the rules).
        self.path = path
        self.keep = keep
        self.follower_queue = follower_queue
        self._db: aiosqlite.Connection | None = None
        self._last_seq = 0
        self._followers: set[_Follower] = set()
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def open(self) -> None:
        self._db = await sqlite.connect(self.path)
        await self._db.executescript(_SCHEMA)
        async with self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts") as cursor:
            row = await cursor.fetchone()
        self._last_seq = int(row[0]) if row else 0

    async def close(self) -> None:
        self._closed.set()
        for follower in self._followers:
            follower.wakeup.set()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def append(self, event: event_pb2.Event) -> event_pb2.Event:
        """Give the alert the next `seq` (and a time), store it, then hand it to followers."""
        assert self._db is not None, "the alert log is not open"
        async with self._lock:
            event.seq = self._last_seq + 1
            if not event.time_unix_nano:
                event.time_unix_nano = time.time_ns()
            data = event.SerializeToString()
            await self._db.execute(
                "INSERT INTO alerts (seq, time_ns, data) VALUES (?, ?, ?)",
                (event.seq, event.time_unix_nano, data),
            )
            if event.seq % 100 == 0:
                # Trim now and then; `read` never serves beyond `keep` anyway.
                oldest = event.seq - self.keep
                await self._db.execute("DELETE FROM alerts WHERE seq <= ?", (oldest,))
            self._last_seq = event.seq
        for follower in self._followers:
            follower.offer(event.seq, data)
        return event

    async def read(self, after_seq: int, limit: int = READ_BATCH) -> list[tuple[int, bytes]]:
        assert self._db is not None, "the alert log is not open"
        if after_seq >= self._last_seq:
            return []  # also keeps a client's uint64 out of SQLite's int64
        floor = max(after_seq, self._last_seq - self.keep)
        async with self._db.execute(
            "SELECT seq, data FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?", (floor, limit)
        ) as cursor:
            rows = await cursor.fetchall()
        return [(int(seq), bytes(data)) for seq, data in rows]

    async def watch(self, after_seq: int, follow: bool) -> AsyncIterator[list[bytes]]:
        """Stored alerts after `after_seq`, then (with `follow`) new ones as they come.

        The first batch comes at once, empty when there is nothing to replay, so a caller
        knows the stream is established before any alert fires.
        """
        follower = _Follower(self.follower_queue)
        self._followers.add(follower)
        try:
            cursor, first = after_seq, True
            while True:
                # Queue live alerts from here on; the store read below may return some of
                # them too, and the `seq` check drops those twice-seen ones.
                follower.lagging = False
                while True:
                    rows = await self.read(cursor)
                    if rows or first:
                        yield [data for _, data in rows]
                        first = False
                    if rows:
                        cursor = rows[-1][0]
                    if len(rows) < READ_BATCH:
                        break
                if not follow:
                    return
                while not follower.lagging:
                    if follower.queue.empty():
                        follower.wakeup.clear()
                        if self._closed.is_set():
                            return
                        await follower.wakeup.wait()
                        continue
                    seq, data = follower.queue.get_nowait()
                    if seq > cursor:
                        cursor = seq
                        yield [data]
                # Too slow for live delivery: catch up from the store.
        finally:
            self._followers.discard(follower)

    @property
    def follower_count(self) -> int:
        return len(self._followers)
