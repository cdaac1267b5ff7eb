"""A lane: a thread of its own that runs jobs one after another, in the order given.

An upload hands each MiB to two lanes (hash, write). With an executor, each hand-off was a
`submit` (locks, a future) and each wait a wrapped future and a wake-up of the event loop
through its self-pipe, per MiB and lane: about a fifth of the loop's busy time in a profile
of 256 MiB uploads. Here a hand-off is a `SimpleQueue.put`, the loop asks whether a job has
run by reading a counter, and the thread wakes the loop only while the loop waits for it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

Job = Callable[[], None]


class Lane:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Job, bool] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.submitted = 0
        # Jobs run (or skipped), and the first job's error: later jobs are skipped after it.
        self.done = 0
        self.error: BaseException | None = None
        self._dropping = False

    def put(self, job: Job, *, always: bool = False) -> int:
        """Queue `job`; its number for `wait_for`. An `always` job runs even after an error
        or `drop` (the removal of a temp file)."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._queue.put((job, always))
        self.submitted += 1
        return self.submitted

    def drop(self) -> None:
        """Skip the jobs not started yet (but `always` ones)."""
        self._dropping = True

    def close(self) -> None:
        """The thread ends once the jobs queued before are done."""
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        assert self._loop is not None
        while (item := self._queue.get()) is not None:
            job, always = item
            if always or (self.error is None and not self._dropping):
                try:
                    job()
                except BaseException as e:
                    if self.error is None:
                        self.error = e
            self.done += 1
            if self._waiter is not None:  # published before the loop re-checked `done`
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for(self, number: int) -> None:
        """Until job `number` has run; raises the error of a job that failed."""
        while self.done < number:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                if self.done < number:  # it may have run before the waiter was set
                    await self._waiter
            finally:
                self._waiter = None
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise self.error
