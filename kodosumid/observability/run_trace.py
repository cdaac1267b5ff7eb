"""The trace of an execution as the node sees it: which trace a launch belongs to, the
context handed to the executor, and the trace and span ids on the events the node writes.

The launch runs inside the server span of `LaunchExecution` (kodosumi/rpc/tracing.py), which
continues the client's trace; that span is the parent of the execution span the executor
opens (engine/tracing.py), for every attempt. A relayed launch continues the same trace on
the peer: the peer call carries the context (kodosumi/rpc/channel.py). After a node restart
the launch's span is gone; the execution still continues its stored trace id.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

from kodosumi.telemetry import current_traceparent, ids_of, traceparent_for_trace
from kodosumi.telemetry.names import EXECUTION_ID, FLOW
from kodosumi.v1 import event_pb2


@dataclass(frozen=True, slots=True)
class RunTrace:
    trace_id: str = ""
    span_id: str = ""
    # W3C traceparent the executor's execution span takes as its parent.
    traceparent: str = ""

    @property
    def ids(self) -> tuple[str, str]:
        return self.trace_id, self.span_id

    def stamp(self, event: event_pb2.Event) -> event_pb2.Event:
        if not event.trace_id:
            event.trace_id, event.span_id = self.trace_id, self.span_id
        return event


def launch_trace(execution_id: str, flow: str, owner: str) -> RunTrace:
    """The trace of a launch being served now; names the execution on the server span."""
    span = trace.get_current_span()
    context = span.get_span_context()
    if not context.is_valid:
        return RunTrace()
    span.set_attribute(EXECUTION_ID, execution_id)
    span.set_attribute(FLOW, flow)
    span.set_attribute("kodosumi.owner", owner)
    trace_id, span_id = ids_of(context)
    return RunTrace(trace_id, span_id, current_traceparent())


def resumed_trace(trace_id: str) -> RunTrace:
    """The trace of an execution taken up again after a restart (its launch span is gone)."""
    traceparent = traceparent_for_trace(trace_id) if trace_id else ""
    return RunTrace(trace_id, traceparent.split("-")[2] if traceparent else "", traceparent)


def trace_of(traceparent: str) -> RunTrace:
    parts = traceparent.split("-")
    if len(parts) != 4:
        return RunTrace()
    return RunTrace(parts[1], parts[2], traceparent)


# Execution ids are 32 hex digits (a prefix of one will do): a caller's longer "id" is cut,
# so that no request makes the node export an attribute of its choosing size.
MAX_ID_CHARS = 64


def name_execution(execution_id: str) -> None:
    """The RPC being served concerns this execution (as the caller names it, before any
    check): say so on its server span."""
    span = trace.get_current_span()
    if execution_id and span.is_recording():
        span.set_attribute(EXECUTION_ID, execution_id[:MAX_ID_CHARS])


def join_run(execution_id: str, trace_id: str, traceparent: str = "") -> None:
    """The RPC being served acts on a run (cancel, input): name the execution on its server
    span and link that span to the run's trace. The caller's trace is usually another one
    (an operator cancelling from a shell), so the link is how one finds the other.

    `traceparent` names the launch's span when the node still knows it; otherwise the link
    points into the run's trace at an unknown span.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(EXECUTION_ID, execution_id)
    run = trace_of(traceparent) if traceparent else resumed_trace(trace_id)
    if not run.trace_id or not run.span_id:
        return
    if run.trace_id == ids_of(span.get_span_context())[0]:
        return  # the same trace already (a flow cancelling its own child)
    context = SpanContext(
        int(run.trace_id, 16), int(run.span_id, 16), is_remote=True, trace_flags=TraceFlags(1)
    )
    span.add_link(context, {"kodosumi.link": "run", EXECUTION_ID: execution_id})
