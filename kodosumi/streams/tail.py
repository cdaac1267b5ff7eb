"""The recent end of one stream in memory, shared by everyone following it.

The writer appends chunks after they are stored (durable before visible); followers read
the chunks after their cursor and wait on one shared future for the next append. The tail
keeps at most `max_bytes` (always its newest chunk): a follower further behind than that
reads the store instead, so a slow follower costs the tail nothing and the tail costs the
node a fixed amount per followed stream, whatever the number of followers.
"""

from __future__ import annotations

import asyncio
from collections import deque

from kodosumi.streams.frames import Chunk, coalesce

TAIL_BYTES = 2 * 1024 * 1024
# Responses remembered per tail state, by cursor: followers in step share one response.
MEMO_CURSORS = 8


class Tail:
    def __init__(self, max_bytes: int = TAIL_BYTES) -> None:
        self.max_bytes = max_bytes
        self._chunks: deque[Chunk] = deque()
        self._bytes = 0
        # The seq of the stream's last event once it has ended (0 while it goes on).
        self.end_seq = 0
        self.closed = False
        self.followers = 0
        self._changed: asyncio.Future[None] | None = None
        self._memo: dict[tuple[int, int], tuple[int, bytes]] = {}

    @property
    def last_seq(self) -> int:
        return self._chunks[-1].last_seq if self._chunks else 0

    def append(self, new: list[Chunk], end_seq: int = 0) -> None:
        for chunk in new:
            self._chunks.append(chunk)
            self._bytes += len(chunk.data)
        while self._bytes > self.max_bytes and len(self._chunks) > 1:
            self._bytes -= len(self._chunks.popleft().data)
        if end_seq:
            self.end_seq = end_seq
        self._memo.clear()
        self._wake()

    def close(self) -> None:
        """Nothing more will be appended by this writer (followers re-check the store)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    def after(self, cursor: int) -> list[Chunk] | None:
        """The chunks holding events after `cursor` ([] when there are none yet), or None when
        the tail no longer reaches back to `cursor + 1` (read the store)."""
        chunks = self._chunks
        if not chunks or chunks[-1].last_seq <= cursor:
            return []
        if chunks[0].first_seq > cursor + 1:
            return None
        # Followers are mostly near the end: walk back from there and copy only the new
        # chunks. A tail of small batches holds thousands of chunks (2 MiB of 100-byte
        # events); copying them all per follower and wake-up cost O(tail) each time.
        new: list[Chunk] = []
        for chunk in reversed(chunks):
            if chunk.last_seq <= cursor:
                break
            new.append(chunk)
        new.reverse()
        return new

    def next_response(self, cursor: int, max_bytes: int) -> tuple[int, bytes] | tuple[()] | None:
        """(last seq, response bytes) of the next response after `cursor`; () when nothing is
        new; None when the tail no longer reaches back to `cursor + 1`.

        Followers in step (the same cursor, typically all of the live ones) get the same
        bytes object, joined once; each holds only the response it is sending."""
        key = (cursor, max_bytes)
        found = self._memo.get(key)
        if found is not None:
            return found
        new = self.after(cursor)
        if new is None:
            return None
        if not new:
            return ()
        # Only the first response is built: the follower comes back with its new cursor.
        first: list[Chunk] = []
        size = 0
        for chunk in new:
            if first and size + len(chunk.data) > max_bytes:
                break
            first.append(chunk)
            size += len(chunk.data)
        found = coalesce(first, cursor, max_bytes)[0]
        if len(self._memo) < MEMO_CURSORS:
            self._memo[key] = found
        return found

    def changed(self) -> asyncio.Future[None]:
        """Done at the next append or close; one future for all followers.

        Await it through `wait_changed`: a task cancelled while awaiting a future cancels
        that future, and a shared one would take every other follower down with it."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    async def wait_changed(self) -> None:
        """Until the next append or close. One follower going away (its watcher hung up,
        its task cancelled) leaves the others waiting: the shared future is shielded.
        Unshielded, the cancel reached the other followers' serving tasks, which gRPC took
        for their clients' cancels: their calls hung with no status and no more events."""
        await asyncio.shield(self.changed())
