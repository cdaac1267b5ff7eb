"""Live fan-out of stored events to the watchers of each execution.

Only events already committed to the store are published here (durable before visible).
Each watcher has a bounded queue of batches; a watcher too slow to keep up is marked
lagging and its queue is dropped, and it catches up from the store instead — a slow
watcher never slows the node down and never loses an event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Batch:
    first_seq: int
    events: list[bytes]
    # The seq of the terminal status event when this batch holds it, else 0.
    terminal_seq: int = 0

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.events) - 1


class Subscription:
    def __init__(self, hub: WatchHub, execution_id: str, max_batches: int) -> None:
        self.hub = hub
        self.execution_id = execution_id
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(max_batches)
        self.lagging = False
        self._wakeup = asyncio.Event()

    def offer(self, batch: Batch) -> None:
        if self.lagging:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self._wakeup.set()

    async def next(self) -> Batch | None:
        """The next live batch, or None when the watcher lags and must re-read the store."""
        if self.lagging:
            self.lagging = False
            self._wakeup.clear()
            return None
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        lag = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({getter, lag}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lag.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        self.lagging = False
        self._wakeup.clear()
        return None

    def close(self) -> None:
        self.hub.unsubscribe(self)


class WatchHub:
    def __init__(self, max_batches_per_watcher: int = 256) -> None:
        self.max_batches = max_batches_per_watcher
        self._subs: dict[str, set[Subscription]] = {}

    def subscribe(self, execution_id: str) -> Subscription:
        sub = Subscription(self, execution_id, self.max_batches)
        self._subs.setdefault(execution_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.execution_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.execution_id]

    def publish(self, execution_id: str, batch: Batch) -> None:
        for sub in self._subs.get(execution_id, ()):
            sub.offer(batch)

    @property
    def watcher_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
