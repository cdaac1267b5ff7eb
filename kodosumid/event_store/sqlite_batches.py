"""Drained batches as SQLite rows: one row holds consecutive events of one execution.

A drain call brings up to `pool.drain_batch` events per execution; storing them as one row
(`first_seq`, `last_seq`, the events each framed with a 4-byte length) instead of one row per
event makes the node's store write ~20x cheaper (`bench/store_rows.py`). Rows are cut at
`MAX_ROW_BYTES` (one larger event gets a row of its own), so a replay page never loads more
than one row beyond what it returns.

The launch's first events and everything an earlier node stored stay one row per event in
`events`; for any execution those seqs come before the batch rows' (writes are gapless and in
order), so a read takes `events` first and continues in `event_batches`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import aiosqlite

MAX_ROW_BYTES = 1024 * 1024
_LENGTH = struct.Struct(">I")
FRAME_BYTES = _LENGTH.size

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_batches (
    execution_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS event_batches_by_seq
    ON event_batches (execution_id, first_seq);
"""


def rows_of(
    execution_id: str, first_seq: int, datas: list[bytes]
) -> Iterator[tuple[str, int, int, bytes]]:
    """(execution_id, first_seq, last_seq, framed data) rows of at most `MAX_ROW_BYTES`."""
    start, size = 0, 0
    for i, data in enumerate(datas):
        if i > start and size + len(data) + FRAME_BYTES > MAX_ROW_BYTES:
            yield _row(execution_id, first_seq + start, datas[start:i])
            start, size = i, 0
        size += len(data) + FRAME_BYTES
    if start < len(datas):
        yield _row(execution_id, first_seq + start, datas[start:])


def _row(execution_id: str, first_seq: int, datas: list[bytes]) -> tuple[str, int, int, bytes]:
    framed = b"".join(_LENGTH.pack(len(d)) + d for d in datas)
    return execution_id, first_seq, first_seq + len(datas) - 1, framed


def split(first_seq: int, framed: bytes) -> Iterator[tuple[int, bytes]]:
    """The (seq, data) events of one row."""
    offset, seq = 0, first_seq
    view = memoryview(framed)
    while offset < len(framed):
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += FRAME_BYTES
        yield seq, bytes(view[offset : offset + size])
        offset += size
        seq += 1


async def read_after(
    db: aiosqlite.Connection,
    execution_id: str,
    after_seq: int,
    max_events: int,
    max_bytes: int,
    page: list[tuple[int, bytes]],
    total: int,
) -> list[tuple[int, bytes]]:
    """Extend `page` (already `total` bytes) with batch-row events after `after_seq`, one
    row at a time, until a bound is reached (the first event of a page always comes)."""
    while len(page) < max_events:
        # Fetched whole (no cursor left open): a reader never pins an old snapshot.
        rows = list(
            await db.execute_fetchall(
                "SELECT first_seq, last_seq, data FROM event_batches WHERE execution_id = ? "
                "AND last_seq > ? ORDER BY first_seq LIMIT 1",
                (execution_id, after_seq),
            )
        )
        if not rows:
            return page
        row = rows[0]
        for seq, data in split(int(row[0]), bytes(row[2])):
            if seq <= after_seq:
                continue
            total += len(data)
            if page and total > max_bytes:
                return page
            page.append((seq, data))
            if len(page) >= max_events:
                return page
        after_seq = int(row[1])
    return page
