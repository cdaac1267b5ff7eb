"""The SQLite store's reads that must stay bounded: replay pages and listing pages.

Both size a page before loading it (`length()` of a BLOB reads none of it), then load only
what fits, so a page never holds more than it returns: a watcher of a stream with large events
or a listing of executions with large inputs costs one page, not the whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite

from kodosumid.event_store import sqlite_batches
from kodosumid.event_store.inputs_event import restore_inputs
from kodosumid.event_store.model import (
    ExecutionRecord,
    Page,
    decode_token,
    encode_token,
    record_size,
)
from kodosumid.event_store.sqlite_schema import (
    SELECT_INPUTS,
    SELECT_ROWS,
    inputs_seq,
    inputs_size,
    to_record,
)

# SQLite's default limit on host parameters is far above this; keep IN lists modest anyway.
_CHUNK = 500


# Every read is one `execute_fetchall`: statement, rows and reset happen in one call on the
# connection's thread, so a caller cancelled mid-read (a watcher that hung up) can never
# leave a statement open — which would pin the reader to an old snapshot, and every later
# read of the node (a launch just committed) would miss new rows.


async def read_page(
    db: aiosqlite.Connection, execution_id: str, after_seq: int, max_events: int, max_bytes: int
) -> list[tuple[int, bytes]]:
    rows = list(await db.execute_fetchall(f"{SELECT_ROWS} WHERE execution_id = ?", (execution_id,)))
    row = rows[0] if rows else None
    stripped, stripped_size = (inputs_seq(row), inputs_size(row)) if row else (0, 0)
    sizes = [
        (int(seq), int(size))
        for seq, size in await db.execute_fetchall(
            "SELECT seq, length(data) FROM events WHERE execution_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (execution_id, after_seq, max(max_events, 1)),
        )
    ]
    if not sizes:
        # Everything after `after_seq` is in batch rows (or nothing is stored after it).
        return await sqlite_batches.read_after(
            db, execution_id, after_seq, max_events, max_bytes, [], 0
        )
    last, total, full = sizes[0][0], 0, len(sizes) >= max_events
    for seq, stored_size in sizes:
        size = stored_size + (stripped_size if seq == stripped else 0)
        if total + size > max_bytes and seq != sizes[0][0]:
            full = True
            break
        total += size
        last = seq
    page = [
        (int(seq), bytes(data))
        for seq, data in await db.execute_fetchall(
            "SELECT seq, data FROM events WHERE execution_id = ? AND seq > ? AND seq <= ? "
            "ORDER BY seq",
            (execution_id, after_seq, last),
        )
    ]
    if after_seq < stripped <= last:
        inputs = (await inputs_of(db, [execution_id]))[execution_id]
        page = [(s, restore_inputs(d, inputs) if s == stripped else d) for s, d in page]
    if full:
        return page
    # The per-event rows end here; the stream continues in batch rows.
    return await sqlite_batches.read_after(
        db, execution_id, last, max_events, max_bytes, page, total
    )


async def inputs_of(db: aiosqlite.Connection, execution_ids: list[str]) -> dict[str, str | bytes]:
    """The stored inputs (JSON) of each execution."""
    found: dict[str, str | bytes] = {}
    for start in range(0, len(execution_ids), _CHUNK):
        chunk = execution_ids[start : start + _CHUNK]
        sql = f"{SELECT_INPUTS} ({', '.join('?' * len(chunk))})"
        found.update((str(eid), inputs) for eid, inputs in await db.execute_fetchall(sql, chunk))
    return found


async def records(
    db: aiosqlite.Connection, where: str = "", params: Iterable[Any] = ()
) -> list[ExecutionRecord]:
    rows = list(await db.execute_fetchall(f"{SELECT_ROWS} {where}", tuple(params)))
    inputs = await inputs_of(db, [str(row[0]) for row in rows])
    return [to_record(row, inputs[str(row[0])]) for row in rows]


async def list_page(
    db: aiosqlite.Connection,
    *,
    owner: str | None,
    statuses: Iterable[int],
    flow: str,
    page_size: int,
    page_token: str,
    max_bytes: int,
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
    sql = SELECT_ROWS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY create_ns DESC, execution_id DESC LIMIT ?"
    params.append(page_size + 1)
    rows = list(await db.execute_fetchall(sql, params))
    more = len(rows) > page_size
    rows = rows[:page_size]
    if max_bytes:
        total = 0
        for i, row in enumerate(rows):
            total += record_size(to_record(row), inputs_size(row))
            if total > max_bytes and i > 0:
                rows, more = rows[:i], True
                break
    inputs = await inputs_of(db, [str(row[0]) for row in rows])
    found = [to_record(row, inputs[str(row[0])]) for row in rows]
    token = encode_token(found[-1].create_ns, found[-1].execution_id) if more and found else ""
    return Page(found, token)
