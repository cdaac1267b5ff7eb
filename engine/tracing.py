"""Spans and metrics of the executions an executor runs, built from the events they emit.

Every event of an execution passes `RunTracer.observe` on its way into the buffer, so one
place turns them into OpenTelemetry spans whatever adapter produced them (plain callables,
CrewAI crews and flows, YAML specs): the execution span is the child of the launch on the
node (the W3C `traceparent` the spec carries), and each agent, task, LLM call, tool call and
input request becomes a child span from its STARTED event to its COMPLETED or FAILED one,
nested as the events' `parent_step_id` say and timed by the events' own timestamps. Each
event is stamped with the trace and span id it belongs to, so a reader goes from any event
to its place in the trace.

With tracing off (no SDK tracer provider in the process) none of this runs: see
`engine/observers.py`, which picks what each run's events pass.

Executors are processes of their own: `install` (called once by the executor actor) sets up
export from the `KODOSUMI_TELEMETRY_*` variables the node passes, and `flush_soon` sends an
execution's spans right after it ends instead of at the next batch interval.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode

from engine.genai import provider_of
from engine.spec import ExecutionSpec
from kodosumi.statuses import ATTEMPT_ENDING, status_word
from kodosumi.telemetry import Telemetry, TelemetryConfig, context_from_traceparent, ids_of
from kodosumi.telemetry.names import EXECUTION_ID, FLOW, NODE_ID
from kodosumi.v1 import event_pb2

log = logging.getLogger(__name__)

TRACER_NAME = "kodosumi.engine"
SERVICE_NAME = "kodosumi-executor"

STARTED = event_pb2.STEP_PHASE_STARTED
COMPLETED = event_pb2.STEP_PHASE_COMPLETED
FAILED = event_pb2.STEP_PHASE_FAILED
# The run's root span ends with its attempt (a retry opens a new run).
_TERMINAL = ATTEMPT_ENDING


class _Instruments:
    """The executor's own metrics (what only the engine sees: LLM tokens, tool calls)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.tokens = meter.create_counter(
            "kodosumi.llm.tokens", unit="{token}", description="LLM tokens by model and type"
        )
        self.llm_calls = meter.create_counter(
            "kodosumi.llm.calls", unit="{call}", description="LLM calls by model and outcome"
        )
        self.tool_calls = meter.create_counter(
            "kodosumi.tool.calls", unit="{call}", description="Tool calls by tool and outcome"
        )


_telemetry: Telemetry | None = None
_instruments: _Instruments | None = None
_install_lock = threading.Lock()
_flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kodosumi-telemetry-flush")
_flush_pending = threading.Event()


def install(env: Mapping[str, str] | None = None, node_id: str = "") -> Telemetry:
    """Export as the node asked (`KODOSUMI_TELEMETRY_*`, then `OTEL_*`); once per process."""
    global _telemetry, _instruments
    with _install_lock:
        if _telemetry is None:
            env = os.environ if env is None else env
            attributes = {"service.instance.id": f"{node_id or 'executor'}-{os.getpid()}"}
            if node_id:
                attributes["kodosumi.node_id"] = node_id
            try:
                config = TelemetryConfig.from_env(env)
            except ValueError as e:
                log.warning("telemetry settings unusable (%s); not exporting", e)
                config = TelemetryConfig(exporter="none")
            _telemetry = Telemetry.install(config, SERVICE_NAME, attributes=attributes, env=env)
            _instruments = _Instruments(_telemetry.meter("kodosumi.engine"))
        return _telemetry


def _meters() -> _Instruments:
    global _instruments
    if _instruments is None:
        # Not installed (engine used in-process, e.g. by tests): the global meter provider.
        _instruments = _Instruments(metrics.get_meter("kodosumi.engine"))
    return _instruments


def installed() -> Telemetry | None:
    """The export `install` set up in this process (None: not installed)."""
    return _telemetry


def flush_soon() -> None:
    """Send finished spans and metrics now, in the background (never blocks a flow)."""
    telemetry = _telemetry
    if telemetry is None or not telemetry.plan.exports or _flush_pending.is_set():
        return
    _flush_pending.set()

    def flush() -> None:
        _flush_pending.clear()
        try:
            telemetry.force_flush(5.0)
        except Exception:
            log.debug("telemetry flush failed", exc_info=True)

    _flusher.submit(flush)


class RunTracer:
    """The spans of one execution attempt (see the module doc). Thread-safe: events come
    from the flow's threads, CrewAI's pump and the executor's control loop."""

    def __init__(self, spec: ExecutionSpec, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer(TRACER_NAME)
        self._lock = threading.Lock()
        self.root = self._tracer.start_span(
            f"execution {spec.flow}",
            context=context_from_traceparent(spec.traceparent),
            kind=SpanKind.INTERNAL,
            attributes={
                EXECUTION_ID: spec.execution_id,
                FLOW: spec.flow,
                "kodosumi.entrypoint": spec.entrypoint,
                NODE_ID: spec.node_id,
                "kodosumi.attempt": spec.attempt,
                "kodosumi.owner": spec.owner,
            },
        )
        self.root_context = self.root.get_span_context()
        self._open: dict[str, Span] = {}
        # Contexts of every step seen, open or ended: a child may start after its parent.
        self._contexts: dict[str, SpanContext] = {}
        self._ended = False
        self.execution_id = spec.execution_id

    @property
    def trace_id(self) -> str:
        return ids_of(self.root_context)[0]

    def observe(self, event: event_pb2.Event) -> None:
        """Open or close the span an event starts or ends, and stamp the event with it."""
        try:
            with self._lock:
                context = self._observe(event)
        except Exception:  # tracing must never break a run
            log.debug("cannot trace event %s", event.WhichOneof("kind"), exc_info=True)
            context = self.root_context
        if not event.trace_id:
            event.trace_id, event.span_id = ids_of(context)

    def _observe(self, event: event_pb2.Event) -> SpanContext:
        kind = event.WhichOneof("kind")
        if self._ended:
            return self.root_context
        at = event.time_unix_nano or None
        if kind == "error":
            # What failed the run, as OpenTelemetry records an exception (the span's
            # status follows with the terminal status).
            failure = event.error
            self.root.add_event(
                "exception",
                {
                    "exception.type": failure.type or "Exception",
                    "exception.message": failure.message,
                    "exception.stacktrace": failure.traceback,
                },
                timestamp=at,
            )
            return self.root_context
        if kind == "status_changed":
            if event.status_changed.status in _TERMINAL:
                self._end_all(event.status_changed, at)
            return self.root_context
        if kind == "input_requested":
            request = event.input_requested
            return self._start(
                f"input:{request.request_id}",
                "",
                "awaiting input",
                {"kodosumi.step": "input", "kodosumi.input.request_id": request.request_id},
                at,
            )
        if kind == "input_provided":
            provided = event.input_provided
            attributes: dict[str, Any] = {"kodosumi.input.timed_out": provided.timed_out}
            if provided.provided_by:
                attributes["kodosumi.input.provided_by"] = provided.provided_by
            return self._end(f"input:{provided.request_id}", False, "", attributes, at)
        step = _step_of(event)
        if step is None:
            return self.root_context
        step_id, parent_id, phase, name, attributes = step
        if not step_id:
            return self.root_context
        if phase == STARTED:
            kind_of_span = SpanKind.CLIENT if kind == "llm_call" else SpanKind.INTERNAL
            return self._start(step_id, parent_id, name, attributes, at, kind_of_span)
        if phase in (COMPLETED, FAILED):
            count_call(event, phase)
            error = _error_of(event) if phase == FAILED else ""
            return self._end(step_id, phase == FAILED, error, attributes, at)
        return self._contexts.get(step_id, self.root_context)  # streamed chunks

    def _start(
        self,
        step_id: str,
        parent_id: str,
        name: str,
        attributes: dict[str, Any],
        at: int | None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> SpanContext:
        if step_id in self._open:
            return self._open[step_id].get_span_context()
        parent = self._contexts.get(parent_id, self.root_context)
        span = self._tracer.start_span(
            name,
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            kind=kind,  # an LLM call is a CLIENT span (GenAI conventions)
            attributes={
                **attributes,
                "kodosumi.step_id": step_id,
                EXECUTION_ID: self.execution_id,
            },
            start_time=at,
        )
        self._open[step_id] = span
        self._contexts[step_id] = span.get_span_context()
        return span.get_span_context()

    def _end(
        self,
        step_id: str,
        failed: bool,
        error: str,
        attributes: dict[str, Any],
        at: int | None,
    ) -> SpanContext:
        span = self._open.pop(step_id, None)
        if span is None:
            return self._contexts.get(step_id, self.root_context)
        span.set_attributes(attributes)
        if failed:
            span.set_status(Status(StatusCode.ERROR, error[:500]))
            span.add_event("exception", _exception_of(error), timestamp=at)
        span.end(end_time=at)
        return span.get_span_context()

    def _end_all(self, status: event_pb2.StatusChanged, at: int | None) -> None:
        for span in self._open.values():
            # A step that never reported its end: the run ended around it.
            span.set_attribute("kodosumi.step.unfinished", True)
            span.end(end_time=at)
        self._open.clear()
        name = status_word(status.status)
        self.root.set_attribute("kodosumi.status", name)
        if status.reason:
            self.root.set_attribute("kodosumi.status_reason", status.reason[:1000])
        if status.status == event_pb2.EXECUTION_STATUS_SUCCEEDED:
            self.root.set_status(Status(StatusCode.OK))
        elif status.status != event_pb2.EXECUTION_STATUS_CANCELLED:
            self.root.set_status(Status(StatusCode.ERROR, f"{name}: {status.reason}"[:500]))
        self.root.end(end_time=at)
        self._contexts.clear()
        self._ended = True
        flush_soon()  # the run's spans leave now, not at the next batch interval

    def abandon(self) -> None:
        """The run is torn down without a terminal event reaching the tracer."""
        with self._lock:
            if not self._ended:
                for span in self._open.values():
                    span.end()
                self._open.clear()
                self.root.end()
                self._ended = True


def count_call(event: event_pb2.Event, phase: int) -> None:
    """Count a finished LLM or tool call."""
    outcome = "failed" if phase == FAILED else "ok"
    kind = event.WhichOneof("kind")
    instruments = _meters()
    if kind == "llm_call":
        call = event.llm_call
        model = call.model or "unknown"
        instruments.llm_calls.add(1, {"model": model, "outcome": outcome})
        if call.usage.prompt_tokens:
            instruments.tokens.add(call.usage.prompt_tokens, {"model": model, "type": "prompt"})
        if call.usage.completion_tokens:
            instruments.tokens.add(
                call.usage.completion_tokens, {"model": model, "type": "completion"}
            )
    elif kind == "tool_call":
        tool = event.tool_call.tool_name or "unknown"
        instruments.tool_calls.add(1, {"tool": tool, "outcome": outcome})


Step = tuple[str, str, int, str, dict[str, Any]]


def _step_of(event: event_pb2.Event) -> Step | None:
    """(step id, parent step id, phase, span name, attributes) of a step event."""
    kind = event.WhichOneof("kind")
    if kind == "agent_step":
        a = event.agent_step
        attributes: dict[str, Any] = {
            "kodosumi.step": "agent",
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": a.agent_role,
        }
        if a.task_name:
            attributes["kodosumi.task"] = a.task_name
        if a.duration_ms:
            attributes["kodosumi.duration_ms"] = a.duration_ms
        return a.step_id, a.parent_step_id, a.phase, f"agent {a.agent_role}".strip(), attributes
    if kind == "task_step":
        ts = event.task_step
        attributes = {"kodosumi.step": "task", "kodosumi.task": ts.task_name}
        if ts.agent_role:
            attributes["gen_ai.agent.name"] = ts.agent_role
        return ts.step_id, ts.parent_step_id, ts.phase, f"task {ts.task_name}".strip(), attributes
    if kind == "llm_call":
        c = event.llm_call
        attributes = {"kodosumi.step": "llm", "gen_ai.operation.name": "chat"}
        if c.model:
            attributes["gen_ai.request.model"] = c.model
            provider = provider_of(c.model)
            if provider:
                attributes["gen_ai.provider.name"] = provider
        if c.agent_role:
            attributes["gen_ai.agent.name"] = c.agent_role
        if c.phase == COMPLETED:
            attributes["gen_ai.usage.input_tokens"] = c.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = c.usage.completion_tokens
            attributes["kodosumi.llm.total_tokens"] = c.usage.total_tokens
            attributes["kodosumi.llm.latency_ms"] = c.latency_ms
        return c.step_id, c.parent_step_id, c.phase, f"chat {c.model}".strip(), attributes
    if kind == "tool_call":
        t = event.tool_call
        attributes = {
            "kodosumi.step": "tool",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": t.tool_name,
        }
        if t.phase == COMPLETED:
            attributes["kodosumi.tool.latency_ms"] = t.latency_ms
        return t.step_id, t.parent_step_id, t.phase, f"tool {t.tool_name}".strip(), attributes
    return None


def _error_of(event: event_pb2.Event) -> str:
    kind = event.WhichOneof("kind")
    if kind is None:
        return ""
    return str(getattr(getattr(event, kind), "error", ""))


_EXCEPTION_TYPE = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout)): ")


def _exception_of(error: str) -> dict[str, str]:
    """A step's error text as OpenTelemetry's exception attributes (frameworks report steps'
    errors as text: `Type: message` gives the type, otherwise only the message is known)."""
    attributes = {"exception.message": error or "failed"}
    match = _EXCEPTION_TYPE.match(error)
    if match:
        attributes["exception.type"] = match.group(1)
        attributes["exception.message"] = error[match.end() :] or error
    return attributes
