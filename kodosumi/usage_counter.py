"""Counting what an attempt used from its events: one home for the engine's `Usage` event
(engine/usage.py, as events are emitted) and the node's record of an attempt that ended
without one (kodosumid/executions/metering.py, from the stored events), so both count alike.

Counted: finished LLM calls and their tokens per model, finished tool calls, result and output
bytes, artifact bytes. `fold` may be called from any thread (CrewAI's event bus emits from its
own pool).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from kodosumi.v1 import event_pb2, market_pb2

_FINISHED = (event_pb2.STEP_PHASE_COMPLETED, event_pb2.STEP_PHASE_FAILED)


def inputs_size(inputs: object) -> int:
    """The launch inputs' size as `Usage.input_bytes` counts it."""
    return len(json.dumps(inputs, ensure_ascii=False, default=str).encode())


@dataclass
class _Model:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class UsageCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._tool_calls = 0
        self._output_bytes = 0
        self._artifact_bytes = 0

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

    def fill(self, usage: market_pb2.Usage) -> None:
        """Put the counts into `usage` (its time, attempt and input figures are the caller's)."""
        with self._lock:
            usage.tool_calls = self._tool_calls
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
