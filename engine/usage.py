"""What one attempt of an execution used, counted from the events the engine emits.

`UsageMeter.fold` sees every event on its way into the buffer (any thread: CrewAI's event
bus emits from its own pool), so the figures are exactly what watchers see: finished LLM
calls and their tokens per model, finished tool calls, result, output and artifact bytes
(counted by `kodosumi.usage_counter`, which the node uses too for attempts that end without
this event). Wall and CPU time are the attempt's own (CPU: of the flow's thread, or of its
whole process when it runs alone in one). `event()` is the `Usage` event sent
right before the status that ends the attempt.
"""

from __future__ import annotations

import time

from kodosumi.usage_counter import UsageCounter, inputs_size
from kodosumi.v1 import event_pb2


class UsageMeter:
    """`whole_process`: the run has its process to itself (an isolated executor), so its CPU
    is the process's, threads the flow starts (CrewAI's event bus) included; else (a shared
    executor, other runs beside it) only the flow's own thread can be told apart."""

    def __init__(self, attempt: int, inputs: object, *, whole_process: bool = False) -> None:
        self.attempt = attempt
        self._cpu_clock = time.process_time if whole_process else time.thread_time
        self.input_bytes = inputs_size(inputs)
        self._counter = UsageCounter()
        self._started = time.monotonic()
        self._cpu_started: float | None = None
        self._cpu_seconds = 0.0

    def cpu_start(self) -> None:
        """Called on the flow's thread as it starts."""
        self._cpu_started = self._cpu_clock()

    def cpu_stop(self) -> None:
        """Called on the flow's thread as it ends (before the usage event)."""
        if self._cpu_started is not None:
            self._cpu_seconds = self._cpu_clock() - self._cpu_started
            self._cpu_started = None

    def fold(self, event: event_pb2.Event) -> None:
        self._counter.fold(event)

    def event(self) -> event_pb2.Event:
        event = event_pb2.Event()
        usage = event.usage
        usage.attempt = self.attempt
        usage.wall_seconds = time.monotonic() - self._started
        usage.cpu_seconds = self._cpu_seconds
        usage.input_bytes = self.input_bytes
        self._counter.fill(usage)
        return event
