"""Server spans for every RPC a daemon serves, continuing the caller's W3C trace context.

Our own interceptor rather than `opentelemetry-instrumentation-grpc`'s server side: that one
expects every streaming handler to be an async generator, while servicers that `write()` to
their context (grpc's health `Watch`) are coroutines. It runs outside the guard, so a call
refused by authentication or authorization still gets a span with its status code.

It costs nothing while no SDK tracer provider is installed (the handler passes through), and
so it is always part of the chain (`kodosumi.rpc.server.create_server`).

A streaming handler's span is current only while the handler runs between two responses,
never across a `yield`: grpc resumes (and, when the caller hangs up, closes) the generator
from other tasks, and a context attached in one task cannot be detached in another ("Failed
to detach context"). A caller that hangs up is CANCELLED, not an error of the server.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kodosumi.telemetry import tracer, tracing_active

Context = grpc.aio.ServicerContext[Any, Any]
_TRACER_NAME = "kodosumi.rpc"


def _carrier(metadata: Any) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            carrier[key.lower()] = value
    return carrier


def _finish(span: Span, context: Context, error: BaseException | None) -> None:
    code: grpc.StatusCode | None = None
    try:
        code = context.code()  # type: ignore[assignment]
    except Exception:  # older contexts without code(): judge by the exception alone
        code = None
    if code is None and isinstance(error, (GeneratorExit, asyncio.CancelledError)):
        # The caller hung up (or the server is stopping): nothing failed here.
        code = grpc.StatusCode.CANCELLED
    if code is None:
        code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
    if isinstance(code, int):  # some versions report the raw number
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code == grpc.StatusCode.CANCELLED:
        return  # the caller's choice, not a fault of the server (no error status)
    if code != grpc.StatusCode.OK:
        details = ""
        try:
            details = str(context.details() or "")  # type: ignore[no-untyped-call]
        except Exception:
            details = ""
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}".rstrip(": ")))
        if error is not None and not isinstance(error, grpc.aio.AbortError):
            span.record_exception(error)


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not tracing_active():
            return handler
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        metadata = handler_call_details.invocation_metadata  # type: ignore[attr-defined]
        return _wrap(method, _carrier(metadata), handler)


def _wrap(
    method: str, carrier: dict[str, str], handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    service, _, name = method.lstrip("/").rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    span_name = method.lstrip("/")

    def start(context: Context) -> Span:
        return tracer(_TRACER_NAME).start_span(
            span_name,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    @contextmanager
    def current(span: Span) -> Iterator[None]:
        """`span` is current for this stretch of the handler, in this task only."""
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def unary(behavior: Any) -> Any:
        async def traced(request: Any, context: Context) -> Any:
            span = start(context)
            try:
                with current(span):
                    result = await behavior(request, context)
            except BaseException as e:
                _finish(span, context, e)
                span.end()
                raise
            _finish(span, context, None)
            span.end()
            return result

        return traced

    def streaming(behavior: Any) -> Any:
        if not inspect.isasyncgenfunction(behavior):
            return unary(behavior)  # a writer coroutine (`context.write`)

        async def traced(request: Any, context: Context) -> AsyncIterator[Any]:
            span = start(context)
            error: BaseException | None = None
            with current(span):
                responses = behavior(request, context)
            try:
                while True:
                    # Current while the handler computes the next response; not while the
                    # response waits in `yield` (see the module doc).
                    with current(span):
                        try:
                            item = await anext(responses)
                        except StopAsyncIteration:
                            break
                    yield item
            except BaseException as e:
                error = e
                raise
            finally:
                with current(span):
                    await responses.aclose()
                _finish(span, context, error)
                span.end()

        return traced

    deserialize, serialize = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), deserialize, serialize
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream), deserialize, serialize
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), deserialize, serialize
        )
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), deserialize, serialize
    )
