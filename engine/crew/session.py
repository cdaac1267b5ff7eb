"""One execution's view of the CrewAI event bus: a reorder buffer and the pump that drains it.

Every CrewAI event of the execution gets an ordinal when it is emitted (`stamp`, called
synchronously in the emitting thread), and reaches the session later from the bus's
handler thread pool (`deliver`), in any order. The pump thread puts them back in ordinal
order, converts them (`EventMapper`) and appends them to the execution's buffer. Ordinals
are gapless by construction, so the pump never guesses whether an event is late or lost;
only when the session closes does it stop waiting, after a grace period, for ordinals
whose delivery never came (a handler that could not run, the bus shutting down).

The pump is the only thread that calls `ctx.emit`, so a full execution buffer (the node is
not draining) stalls this execution's pump, never a bus worker shared by all executions.
The flow itself is slowed down instead (`throttle`): an emitting thread waits while more
than `max_backlog` of its events are still on their way.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from engine.crew.mapping import EventMapper

if TYPE_CHECKING:
    from engine.context import FlowContext

log = logging.getLogger(__name__)

# (source, event) as the bus handed them over; None marks an ordinal whose event was lost.
Item = tuple[Any, Any] | None

DEFAULT_MAX_BACKLOG = 1_000
DEFAULT_CLOSE_GRACE = 5.0


class CrewSession:
    """The CrewAI events of one execution on their way to its buffer (see the module doc)."""

    def __init__(
        self,
        ctx: FlowContext,
        *,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        close_grace: float = DEFAULT_CLOSE_GRACE,
    ) -> None:
        self.ctx = ctx
        self.execution_id = ctx.execution_id
        self.max_backlog = max_backlog
        self.close_grace = close_grace
        self.mapper = EventMapper()
        self._cond = threading.Condition(threading.Lock())
        self._stamped = 0  # ordinals handed out: 0 .. _stamped-1
        self._next = 0  # the next ordinal the pump takes
        self._done = 0  # ordinals the pump has finished with (emitted, dropped or skipped)
        self._pending: dict[int, Item] = {}
        self._unordered: list[Item] = []
        self._closing = False
        self._close_deadline = 0.0
        self._pump: threading.Thread | None = None
        self._finished = False
        self.emitted = 0
        self.dropped = 0

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._pump = threading.Thread(
            target=self._run_pump, name=f"kodosumi-crew-{self.execution_id}", daemon=True
        )
        self._pump.start()

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Wait until every stamped event is emitted (or the grace period is over)."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._close_deadline = time.monotonic() + self.close_grace
            self._cond.notify_all()
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join()

    # -- producer side -------------------------------------------------------------------------

    def stamp(self) -> int:
        """The ordinal of an event being emitted now (called in the emitting thread)."""
        with self._cond:
            ordinal = self._stamped
            self._stamped += 1
            return ordinal

    def throttle(self) -> None:
        """Back-pressure and cancellation point, run in the flow's own threads at each event."""
        # Raised inside CrewAI's emit: a cancelled crew stops at its next step instead of
        # running (and paying for) LLM calls until the grace period is over.
        self.ctx.check_cancelled()
        with self._cond:
            while (
                not self._closing
                and not self._finished
                and self._stamped - self._done >= self.max_backlog
                and not self.ctx.cancelled
            ):
                self._cond.wait(0.25)
        self.ctx.check_cancelled()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the events stamped so far are emitted (before the flow emits directly,
        e.g. an input request, so that it follows the steps that led to it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._stamped
            while self._done < target and not self._finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def deliver(self, ordinal: int, item: Item) -> None:
        with self._cond:
            if ordinal < self._next or ordinal in self._pending:
                return  # skipped at close, or delivered twice
            self._pending[ordinal] = item
            if ordinal == self._next:
                self._cond.notify_all()

    def deliver_unordered(self, item: Item) -> None:
        """An event of this execution that was emitted where no ordinal could be given."""
        with self._cond:
            if self._finished:
                return
            self._unordered.append(item)
            self._cond.notify_all()

    # -- the pump ------------------------------------------------------------------------------

    def _take(self) -> tuple[list[Item], int] | None:
        """The next run of ready items in order, and how many ordinals it completes;
        None when the session is done."""
        with self._cond:
            while True:
                batch: list[Item] = []
                start = self._next
                while self._next in self._pending:
                    batch.append(self._pending.pop(self._next))
                    self._next += 1
                ordered = self._next - start
                if self._unordered:
                    batch.extend(self._unordered)
                    self._unordered.clear()
                if batch:
                    return batch, ordered
                if self._closing:
                    if self._next >= self._stamped:
                        self._finished = True
                        self._cond.notify_all()
                        return None
                    if time.monotonic() >= self._close_deadline:
                        missing = self._stamped - self._next - len(self._pending)
                        log.warning(
                            "execution %s: %d CrewAI event(s) never reached the listener",
                            self.execution_id,
                            missing,
                        )
                        # Skip the gaps, keep the order of what did arrive.
                        self.dropped += missing
                        ready = [self._pending.pop(k) for k in sorted(self._pending)]
                        self._done += self._stamped - self._next - len(ready)
                        self._next = self._stamped
                        if not ready:
                            self._finished = True
                            self._cond.notify_all()
                            return None
                        return ready, len(ready)
                    self._cond.wait(max(0.0, self._close_deadline - time.monotonic()))
                else:
                    self._cond.wait()

    def _run_pump(self) -> None:
        try:
            while True:
                taken = self._take()
                if taken is None:
                    return
                batch, ordered = taken
                self._process(batch)
                with self._cond:
                    self._done += ordered
                    self._cond.notify_all()  # wake throttled emitters and flush()
        finally:
            # Also after an unexpected error: nobody may keep waiting for this pump.
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _process(self, batch: list[Item]) -> None:
        for item in batch:
            if item is None:
                continue
            source, event = item
            try:
                converted = self.mapper.convert(source, event)
            except Exception:
                log.exception(
                    "execution %s: cannot convert CrewAI event %s",
                    self.execution_id,
                    getattr(event, "type", type(event).__name__),
                )
                continue
            if converted is not None:
                self.ctx.emit(converted)  # waits while the execution's buffer is full
                self.emitted += 1
