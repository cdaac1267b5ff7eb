"""Watch an execution: its stored events after a `seq`, then live ones, until the terminal one.

The loop is the server's one replay-then-follow primitive (kodosumi/streams/follow.py); this
room says what an execution's store pages, tail and end are. Replay reads the store in
bounded pages shared between watchers at the same point; the live part is the hub's tail
(`fanout.py`), which carries only events already stored. Watchers get framed response
bytes, built once and shared; a watcher that does not read holds one response at most.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kodosumi.streams.follow import replay_then_follow
from kodosumi.streams.frames import CHUNK_BYTES, split
from kodosumi.streams.pages import Page, SharedPages
from kodosumid.event_store import REPLAY_PAGE_BYTES, EventStore
from kodosumid.executions.fanout import WatchHub

# uint64 on the wire, int64 in SQLite: beyond that there is nothing anyway.
SQLITE_MAX_INT = 2**63 - 1
# Events per replay page: with 100-byte events a page is ~200 KiB, with large ones the byte
# bound cuts it first.
PAGE_EVENTS = 2000


class Watches:
    def __init__(
        self,
        store: EventStore,
        hub: WatchHub,
        *,
        page_bytes: int = REPLAY_PAGE_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.store = store
        self.hub = hub
        self.page_bytes = page_bytes
        self.chunk_bytes = chunk_bytes
        self.pages = SharedPages(self._read, chunk_bytes)

    async def _read(self, execution_id: str, after_seq: int) -> list[tuple[int, bytes]]:
        return await self.store.read_page(execution_id, after_seq, PAGE_EVENTS, self.page_bytes)

    async def responses(self, execution_id: str, after_seq: int) -> AsyncIterator[bytes]:
        """`WatchExecutionResponse` bytes: events after `after_seq` until the terminal one.
        The caller has checked that the watcher may see the execution."""

        async def page_after(cursor: int) -> Page:
            return await self.pages.page(execution_id, cursor)

        async def ended_at(cursor: int) -> bool:
            record = await self.store.get_execution(execution_id)
            return record is None or (record.terminal and cursor >= record.last_seq)

        tail = self.hub.follow(execution_id)  # before the first read: no gap between them
        try:
            async for response in replay_then_follow(
                min(after_seq, SQLITE_MAX_INT), page_after, ended_at, tail, self.chunk_bytes
            ):
                yield response
        finally:
            self.hub.release(execution_id, tail)


async def events_of(responses: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The serialized events of each response (for callers inside the node, such as A2A)."""
    async with contextlib.aclosing(responses) as stream:  # type: ignore[type-var]
        async for response in stream:
            yield split(response)
