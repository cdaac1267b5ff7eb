"""Live fan-out of stored events to the watchers of each execution.

Only events already committed to the store are published here (durable before visible).
Each watched execution has one `Tail` (kodosumi/streams/tail.py): a published batch is
framed into response chunks once, and the same bytes go to every watcher; one wake-up
serves them all. Watchers keep only a cursor. A watcher further behind than the tail reads
the store in pages shared with the watchers behind at the same point, so a slow watcher
never slows the node down, never loses an event, and holds no queue of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from kodosumi.streams.frames import CHUNK_BYTES, chunks
from kodosumi.streams.tail import TAIL_BYTES, Tail


@dataclass(frozen=True, slots=True)
class Batch:
    first_seq: int
    events: list[bytes]
    # The seq of the terminal status event when this batch holds it, else 0.
    terminal_seq: int = 0

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.events) - 1


class WatchHub:
    def __init__(self, tail_bytes: int = TAIL_BYTES, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.tail_bytes = tail_bytes
        self.chunk_bytes = chunk_bytes
        self._tails: dict[str, Tail] = {}

    def follow(self, execution_id: str) -> Tail:
        """The execution's tail, counted as followed until `release`."""
        tail = self._tails.get(execution_id)
        if tail is None:
            tail = self._tails[execution_id] = Tail(self.tail_bytes)
        tail.followers += 1
        return tail

    def release(self, execution_id: str, tail: Tail) -> None:
        tail.followers -= 1
        if tail.followers <= 0 and self._tails.get(execution_id) is tail:
            del self._tails[execution_id]

    def publish(self, execution_id: str, batch: Batch) -> None:
        tail = self._tails.get(execution_id)
        if tail is None or not batch.events:
            return  # nobody watches: nothing to frame
        tail.append(chunks(batch.first_seq, batch.events, self.chunk_bytes), batch.terminal_seq)

    @property
    def watcher_count(self) -> int:
        return sum(t.followers for t in self._tails.values())
