"""Replay, then follow: the one loop behind every watch stream of the node.

A follower starts at `cursor` (the last seq it has). It reads the store in bounded pages
(shared with followers at the same point) until the store has nothing newer, asks whether
the stream has ended there, and otherwise follows the tail: whatever chunks are newer than
its cursor, coalesced into responses of at most `max_bytes`, then it waits for the next
append. When it has fallen behind the tail it reads the store again. Each response is
yielded only after the previous one was sent (grpc's flow control): a follower that does
not read holds at most one response of its own, wherever it is in the stream.

Callers subscribe to the tail before calling this, so every event stored after the first
store read is in the tail (the writer appends after storing): store and tail together are
gapless, and `seq` order drops what both hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from kodosumi.streams.frames import CHUNK_BYTES, coalesce
from kodosumi.streams.pages import Page
from kodosumi.streams.tail import Tail

PageAfter = Callable[[int], Awaitable[Page]]
# Whether the stream has ended with the event `cursor` (nothing more will be stored).
EndedAt = Callable[[int], Awaitable[bool]]


async def replay_then_follow(
    cursor: int,
    page_after: PageAfter,
    ended_at: EndedAt,
    tail: Tail | None,
    max_bytes: int = CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """Responses (framed events) after `cursor`; ends once the stream ended and all of it was
    sent, or after the replay when there is no `tail` to follow."""
    while True:
        # A tail closed by its writer (a log closing) gets no more appends: one last replay.
        final = tail is None or tail.closed
        while True:  # replay from the store, a shared page at a time
            page = await page_after(cursor)
            if not page.chunks:
                break
            for last, response in coalesce(page.chunks, cursor, max_bytes):
                yield response
                cursor = last
            del page  # hold nothing while asking for the next page
            if tail is not None and tail.end_seq and cursor >= tail.end_seq:
                return
        if tail is None or final or await ended_at(cursor):
            return
        while True:  # follow the tail
            found = tail.next_response(cursor, max_bytes)
            if found is None:
                break  # fell behind the tail: back to the store
            if not found:
                if tail.end_seq and cursor >= tail.end_seq:
                    return
                if tail.closed:
                    break  # the writer stopped: what it stored last, then the end
                await tail.wait_changed()
                continue
            cursor, response = found
            yield response
            del found, response
            if tail.end_seq and cursor >= tail.end_seq:
                return
