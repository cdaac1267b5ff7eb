"""W3C trace context: the `traceparent` that ties a run together across the client, the
node, its peers and the executors, and running a coroutine inside a given context.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_T = TypeVar("_T")


def traceparent_of(span_context: SpanContext) -> str:
    """The W3C `traceparent` header value naming `span_context` ('' when it is invalid)."""
    if not span_context.is_valid:
        return ""
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def current_traceparent() -> str:
    return traceparent_of(trace.get_current_span().get_span_context())


def current_trace_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span in hex, or ('', '') outside any trace."""
    return ids_of(trace.get_current_span().get_span_context())


def ids_of(span_context: SpanContext) -> tuple[str, str]:
    if not span_context.is_valid:
        return "", ""
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def context_from_traceparent(traceparent: str) -> otel_context.Context | None:
    """An OpenTelemetry context whose (remote) parent is `traceparent`; None when empty/bad."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def traceparent_for_trace(trace_id: str) -> str:
    """A `traceparent` that continues trace `trace_id` from an unknown parent (after a node
    restart the launch's span is gone, but the run still belongs to its trace)."""
    try:
        value = int(trace_id, 16)
    except ValueError:
        return ""
    if not value:
        return ""
    span_id = int.from_bytes(os.urandom(8), "big") or 1
    context = SpanContext(value, span_id, is_remote=True, trace_flags=TraceFlags(1))
    return traceparent_of(context)


async def in_context(coro: Coroutine[Any, Any, _T], ctx: otel_context.Context) -> _T:
    """Await `coro` with `ctx` as the current OpenTelemetry context (a coroutine handed to
    another thread's event loop keeps the caller's trace)."""
    token = otel_context.attach(ctx)
    try:
        return await coro
    finally:
        otel_context.detach(token)
