"""Watch an execution: its stored events after a `seq`, then live ones, until the terminal one.

Replay reads the store in pages; the live part comes from the fan-out hub (`fanout.py`),
which carries only events already stored. A watcher that lags or sees a gap catches up from
the store again, so it gets every event exactly once, in order.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from kodosumid.event_store import EventStore
from kodosumid.executions.fanout import WatchHub

READ_BATCH = 2000
SQLITE_MAX_INT = 2**63 - 1


async def follow(
    store: EventStore, hub: WatchHub, execution_id: str, after_seq: int
) -> AsyncGenerator[list[bytes], None]:
    """Stored events after `after_seq`, then live ones, until the terminal status event."""
    sub = hub.subscribe(execution_id)
    try:
        # uint64 on the wire, int64 in SQLite: beyond that there is nothing anyway.
        cursor = min(after_seq, SQLITE_MAX_INT)
        live_mode = False
        while True:
            if not live_mode:
                rows = await store.read_events(execution_id, cursor, READ_BATCH)
                if rows:
                    yield [data for _, data in rows]
                    cursor = rows[-1][0]
                    continue
                record = await store.get_execution(execution_id)
                if record is None or (record.terminal and cursor >= record.last_seq):
                    return
                live_mode = True
            batch = await sub.next()
            if batch is None or batch.first_seq > cursor + 1:
                live_mode = False  # lagging or a gap: catch up from the store
                continue
            if batch.last_seq <= cursor:
                # Already read from the store; it may still be the end of the stream.
                if batch.terminal_seq and cursor >= batch.terminal_seq:
                    return
                continue
            yield batch.events[cursor + 1 - batch.first_seq :]
            cursor = batch.last_seq
            if batch.terminal_seq and cursor >= batch.terminal_seq:
                return
    finally:
        sub.close()
