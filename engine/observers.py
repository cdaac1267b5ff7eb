"""What each event of a run passes on its way into the buffer, decided once per run.

While the process records spans (an SDK tracer provider), the run's `RunTracer`
(engine/tracing.py). Otherwise no event pays for spans, contexts or attributes that nobody
records: no observer at all, or an `UntracedRun` when something is left to do without spans
(stamping the ids of a launch that was traced, counting LLM and tool calls while metrics are
exported). Before, every event passed `RunTracer.observe` even with tracing off (15 % of an
executor's time; docs/performance.md, section 10).
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

from engine.spec import ExecutionSpec
from engine.tracing import (
    COMPLETED,
    FAILED,
    RunTracer,
    count_call,
    flush_soon,
    installed,
)
from kodosumi.statuses import ATTEMPT_ENDING
from kodosumi.telemetry import context_from_traceparent, ids_of, tracing_active
from kodosumi.v1 import event_pb2

Observer = Callable[[event_pb2.Event], None]


def observer_for(spec: ExecutionSpec) -> Observer | None:
    """What each event of the run passes on its way into the buffer (decided once per run)."""
    if tracing_active():
        return RunTracer(spec).observe
    untraced = UntracedRun(spec)
    return untraced.observe if untraced.stamps or untraced.counts else None


def _counting() -> bool:
    """Whether LLM and tool calls counted here go anywhere (an SDK meter provider)."""
    telemetry = installed()
    provider = telemetry.meter_provider if telemetry is not None else metrics.get_meter_provider()
    return isinstance(provider, SdkMeterProvider)


class UntracedRun:
    """A run in a process that records no spans. Its events still carry the ids a no-op
    tracer would give them (those of the launch's trace, if the launch was traced: a node
    that stopped tracing resumes a traced run), and LLM and tool calls are still counted
    while metrics are exported, with one flush when the run ends."""

    def __init__(self, spec: ExecutionSpec) -> None:
        context = context_from_traceparent(spec.traceparent)
        self.ids = ("", "")
        if context is not None:
            self.ids = ids_of(trace.get_current_span(context).get_span_context())
        self.stamps = bool(self.ids[0])
        self.counts = _counting()

    def observe(self, event: event_pb2.Event) -> None:
        if self.stamps and not event.trace_id:
            event.trace_id, event.span_id = self.ids
        if not self.counts:
            return
        kind = event.WhichOneof("kind")
        if kind in ("llm_call", "tool_call"):
            phase = getattr(event, kind).phase
            if phase in (COMPLETED, FAILED):
                count_call(event, phase)
        elif kind == "status_changed" and event.status_changed.status in ATTEMPT_ENDING:
            flush_soon()
