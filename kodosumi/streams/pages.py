"""Catch-up reads of the store, shared between followers that are at the same point.

Five hundred watchers that start a replay of the same finished stream ask for the same
pages in the same order: each page is read once, framed once, and the same chunks go to all
of them. A page stays shared while any follower holds it (weak references) and while its
read is in flight; nothing else is cached.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable

from kodosumi.streams.frames import CHUNK_BYTES, Chunk, chunks

# (stream key, after_seq) -> (seq, data) of the stored events after it: a bounded page.
ReadPage = Callable[[str, int], Awaitable[list[tuple[int, bytes]]]]


class Page:
    __slots__ = ("__weakref__", "chunks", "last_seq")

    def __init__(self, page_chunks: list[Chunk]) -> None:
        self.chunks = page_chunks
        self.last_seq = page_chunks[-1].last_seq if page_chunks else 0


def page_of(rows: list[tuple[int, bytes]], max_bytes: int = CHUNK_BYTES) -> Page:
    """Frame consecutive stored rows (a page read) into a Page."""
    if not rows:
        return Page([])
    return Page(chunks(rows[0][0], [data for _, data in rows], max_bytes))


class SharedPages:
    def __init__(self, read: ReadPage, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.read = read
        self.chunk_bytes = chunk_bytes
        self.reads = 0  # store reads done (tests and the bench look)
        self._pages: weakref.WeakValueDictionary[tuple[str, int], Page] = (
            weakref.WeakValueDictionary()
        )
        self._inflight: dict[tuple[str, int], asyncio.Future[Page]] = {}

    async def page(self, key: str, after_seq: int) -> Page:
        slot = (key, after_seq)
        found = self._pages.get(slot)
        if found is not None:
            return found
        read = self._inflight.get(slot)
        if read is None:
            # A task of its own: the read finishes for the others even if its first asker
            # goes away meanwhile.
            read = asyncio.ensure_future(self._read(slot))
            self._inflight[slot] = read
        return await asyncio.shield(read)

    async def _read(self, slot: tuple[str, int]) -> Page:
        try:
            self.reads += 1
            page = page_of(await self.read(*slot), self.chunk_bytes)
        finally:
            self._inflight.pop(slot, None)
        if page.chunks:
            self._pages[slot] = page
        return page

    def forget(self, key: str) -> None:
        """Drop shared pages of a stream that changed under them (deleted)."""
        for slot in [s for s in list(self._pages.keys()) if s[0] == key]:
            self._pages.pop(slot, None)
