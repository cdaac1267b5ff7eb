"""What one attempt of an execution used, counted from the events the engine emits.

`UsageMeter.fold` sees every event on its way into the buffer (any thread: CrewAI's event
bus emits from its own pool), so the figures are exactly what watchers see: finished LLM
calls and their tokens per model, finished tool calls, result, output and artifact bytes.
Wall and CPU time are the attempt's own. `event()` is the `Usage` event sent right before
the status that ends the attempt.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from kodosumi.v1 import event_pb2

_FINISHED = (event_pb2.STEP_PHASE_COMPLETED, event_pb2.STEP_PHASE_FAILED)


@dataclass
class _Model:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class UsageMeter:
    def __init__(self, attempt: int, inputs: object) -> None:
        self.attempt = attempt
        self.input_bytes = len(json.dumps(inputs, ensure_ascii=False, default=str).encode())
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._tool_calls = 0
        self._output_bytes = 0
        self._artifact_bytes = 0
        self._started = time.monotonic()
        self._cpu_started: float | None = None
        self._cpu_seconds = 0.0

    def cpu_start(self) -> None:
        """Called on the flow's thread as it starts."""
        self._cpu_started = time.thread_time()

    def cpu_stop(self) -> None:
        """Called on the flow's thread as it ends (before the usage event)."""
        if self._cpu_started is not None:
            self._cpu_seconds = time.thread_time() - self._cpu_started
            self._cpu_started = None

    def fold(self, event: event_pb2.Event) -> None:
        kind = event.WhichOneof("kind")
        if kind == "llm_call":
            call = event.llm_call
            if call.phase in _FINISHED:
                with self._lock:
                    model = self._models.setdefault(call.model, _Model())
                    model.calls += 1
                    model.input_tokens += call.usage.prompt_tokens
                    model.output_tokens += call.usage.completion_tokens
        elif kind == "tool_call":
            if event.tool_call.phase in _FINISHED:
                with self._lock:
                    self._tool_calls += 1
        elif kind == "output_line":
            with self._lock:
                self._output_bytes += len(event.output_line.text.encode())
        elif kind == "result":
            r = event.result
            size = len(r.text.encode()) + len(r.markdown.encode())
            with self._lock:
                self._output_bytes += size
        elif kind == "artifact":
            a = event.artifact
            # A file event carries its size, not its bytes; chunks carry their bytes.
            size = a.total_size if a.file_id else len(a.data)
            with self._lock:
                self._artifact_bytes += size

    def event(self) -> event_pb2.Event:
        event = event_pb2.Event()
        usage = event.usage
        with self._lock:
            usage.attempt = self.attempt
            usage.wall_seconds = time.monotonic() - self._started
            usage.cpu_seconds = self._cpu_seconds
            usage.tool_calls = self._tool_calls
            usage.input_bytes = self.input_bytes
            usage.output_bytes = self._output_bytes
            usage.artifact_bytes = self._artifact_bytes
            for name in sorted(self._models):
                model = self._models[name]
                usage.llm_calls += model.calls
                usage.models.add(
                    model=name,
                    calls=model.calls,
                    input_tokens=model.input_tokens,
                    output_tokens=model.output_tokens,
                )
        return event
