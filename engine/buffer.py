"""The event buffer of one execution: assigns sequence numbers and holds events until acknowledged.

Producers are the flow's thread, the engine's control side and framework callbacks on other
threads, so every operation takes a lock. Events are serialized on append: what the node
drains is exactly what was emitted, whatever the producer does with its message afterwards.
The buffer is bounded by the number of unacknowledged events; a producer that finds it full
waits (backpressure) instead of dropping anything. Once the terminal status event is in, the
buffer is sealed and later appends (from a flow abandoned after cancellation) are discarded.
A RETRYING status seals it the same way: it ends this attempt, the next one gets a new buffer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from engine.events import Event
from kodosumi.statuses import ATTEMPT_ENDING

StatusChange = tuple[int, int, str]  # (seq, status, reason)


class ExecutionBuffer:
    def __init__(
        self,
        execution_id: str,
        *,
        first_seq: int = 1,
        attempt: int = 1,
        capacity: int = 10_000,
        on_append: Callable[[], None] = lambda: None,
    ) -> None:
        self.execution_id = execution_id
        self.attempt = attempt
        self.capacity = capacity
        self._on_append = on_append
        self._cond = threading.Condition(threading.Lock())
        self._events: deque[tuple[int, bytes]] = deque()
        self._statuses: deque[StatusChange] = deque()
        self._next_seq = first_seq
        self._acked = first_seq - 1
        self._terminal_seq = 0
        self._released = False

    @property
    def sealed(self) -> bool:
        return self._terminal_seq != 0

    @property
    def last_seq(self) -> int:
        """The highest sequence number assigned so far."""
        return self._next_seq - 1

    @property
    def finished(self) -> bool:
        """Sealed and every event, the terminal one included, acknowledged by the node."""
        return self.sealed and self._acked >= self._terminal_seq

    def append(self, event: Event, *, wait: bool = True) -> int:
        """Append `event`; returns its seq, or 0 when the buffer is sealed and it was discarded.

        With `wait`, a full buffer blocks the caller until the node acknowledges events. The
        engine's control side appends with `wait=False`: it must never stall on a slow node.
        """
        terminal = (
            event.WhichOneof("kind") == "status_changed"
            and event.status_changed.status in ATTEMPT_ENDING
        )
        with self._cond:
            while (
                wait
                and not self._released
                and not self.sealed
                and len(self._events) >= self.capacity
            ):
                self._cond.wait(timeout=0.5)
            if self.sealed:
                return 0
            seq = self._next_seq
            self._next_seq += 1
            event.execution_id = self.execution_id
            event.seq = seq
            event.attempt = self.attempt
            if not event.time_unix_nano:
                event.time_unix_nano = time.time_ns()
            self._events.append((seq, event.SerializeToString()))
            if event.WhichOneof("kind") == "status_changed":
                self._statuses.append(
                    (seq, event.status_changed.status, event.status_changed.reason)
                )
            if terminal:
                self._terminal_seq = seq
        self._on_append()
        return seq

    def ack(self, seq: int) -> None:
        """The node stored every event up to `seq`: they may be dropped."""
        with self._cond:
            if seq <= self._acked:
                return
            self._acked = seq
            events, statuses = self._events, self._statuses
            while events and events[0][0] <= seq:
                events.popleft()
            while statuses and statuses[0][0] <= seq:
                statuses.popleft()
            self._cond.notify_all()

    def peek(self, limit: int) -> tuple[list[bytes], list[StatusChange]]:
        """Up to `limit` unacknowledged events (oldest first) and the status changes among them."""
        with self._cond:
            if not self._events:
                return [], []
            count = min(limit, len(self._events))
            if count == len(self._events):
                batch = [data for _, data in self._events]
            else:
                batch = [self._events[i][1] for i in range(count)]
            last = self._events[count - 1][0]
            statuses = [s for s in self._statuses if s[0] <= last]
            return batch, statuses

    def has_unacked(self) -> bool:
        return bool(self._events)

    def release(self) -> None:
        """Stop making producers wait (the execution is being torn down)."""
        with self._cond:
            self._released = True
            self._cond.notify_all()
