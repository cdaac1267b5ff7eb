"""The node's operator stream: every alert it raised, kept in `<state>/alerts.sqlite` (the
newest `keep`), and followed live by `WatchAlerts` streams.

Alerts get their own gapless `seq` on this node, so a follower resumes after the last one it
saw, across node restarts. Like execution events, an alert is stored before any follower or
webhook sees it. A follower too slow for its queue is dropped from live delivery and catches
up from the store: `responses` is the node's replay-then-follow loop
(kodosumi/streams/follow.py) over this log, with a tail bounded in bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from kodosumi import sqlite
from kodosumi.streams.follow import replay_then_follow
from kodosumi.streams.frames import chunks, split
from kodosumi.streams.pages import Page, page_of
from kodosumi.streams.tail import Tail
from kodosumi.v1 import event_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""
READ_BATCH = 500
# Bytes of one replay page: what a follower that does not read holds at most (with the one
# response it is sending). One larger alert still comes, alone.
PAGE_BYTES = 256 * 1024
# About what one alert event takes serialized (for the size of the live tail).
ALERT_BYTES = 1024


class AlertLog:
    def __init__(self, path: Path | None, keep: int = 1000, follower_queue: int = 256) -> None:
        # None: in memory only (tests of the rules).
        self.path = path
        self.keep = keep
        # Recent alerts kept in memory for live followers (~`follower_queue` alerts).
        self._tail = Tail(max(follower_queue, 1) * ALERT_BYTES)
        self._db: aiosqlite.Connection | None = None
        self._last_seq = 0
        self._lock = asyncio.Lock()

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
        self._tail.close()
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
        self._tail.append(chunks(event.seq, [data]))
        return event

    async def read(
        self, after_seq: int, limit: int = READ_BATCH, max_bytes: int = PAGE_BYTES
    ) -> list[tuple[int, bytes]]:
        """Stored alerts after `after_seq`: at most `limit`, and only as many as fit in
        `max_bytes` (at least one)."""
        assert self._db is not None, "the alert log is not open"
        if after_seq >= self._last_seq:
            return []  # also keeps a client's uint64 out of SQLite's int64
        floor = max(after_seq, self._last_seq - self.keep)
        # Sizes first (SQLite knows a blob's length without reading it): a page of large
        # alerts is cut before it is loaded.
        async with self._db.execute(
            "SELECT length(data) FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?", (floor, limit)
        ) as cursor:
            sizes = [int(size) for (size,) in await cursor.fetchall()]
        total, count = 0, 0
        for size in sizes:
            total += size
            if total > max_bytes and count:
                break
            count += 1
        async with self._db.execute(
            "SELECT seq, data FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?", (floor, count)
        ) as cursor:
            rows = await cursor.fetchall()
        return [(int(seq), bytes(data)) for seq, data in rows]

    async def responses(self, after_seq: int, follow: bool) -> AsyncIterator[bytes]:
        """`WatchAlertsResponse` bytes: stored alerts after `after_seq`, then (with `follow`)
        new ones as they come. The first response comes at once, empty when there is
        nothing to replay, so a caller knows the stream is established before any alert."""
        tail = self._tail if follow else None

        async def page_after(cursor: int) -> Page:
            return page_of(await self.read(cursor))

        async def never(cursor: int) -> bool:
            return False  # the operator stream goes on while the node runs

        if tail is not None:
            tail.followers += 1
        try:
            if not (await page_after(after_seq)).chunks:
                yield b""
            async for response in replay_then_follow(after_seq, page_after, never, tail):
                yield response
        finally:
            if tail is not None:
                tail.followers -= 1

    async def watch(self, after_seq: int, follow: bool) -> AsyncIterator[list[bytes]]:
        """`responses`, each as the list of its serialized alert events."""
        async for response in self.responses(after_seq, follow):
            yield split(response)

    @property
    def follower_count(self) -> int:
        return self._tail.followers
