"""Server spans for every RPC a daemon serves, continuing the caller's W3C trace context.

Our own interceptor rather than `opentelemetry-instrumentation-grpc`'s server side: that one
expects every streaming handler to be an async generator, while servicers that `write()` to
their context (grpc's health `Watch`) are coroutines. It runs outside the guard, so a call
refused by authentication or authorization still gets a span with its status code.

It costs nothing while no SDK tracer provider is installed (the handler passes through), and
so it is always part of the chain (`kodosumi.rpc.server.create_server`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import propagate
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
    if code is None:
        code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
    if isinstance(code, int):  # some versions report the raw number
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
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

    @contextmanager
    def span_for(context: Context) -> Iterator[Span]:
        parent = propagate.extract(carrier)
        with tracer(_TRACER_NAME).start_as_current_span(
            span_name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def unary(behavior: Any) -> Any:
        async def traced(request: Any, context: Context) -> Any:
            with span_for(context) as span:
                try:
                    result = await behavior(request, context)
                except BaseException as e:
                    _finish(span, context, e)
                    raise
                _finish(span, context, None)
                return result

        return traced

    def streaming(behavior: Any) -> Any:
        if not inspect.isasyncgenfunction(behavior):
            return unary(behavior)  # a writer coroutine (`context.write`)

        async def traced(request: Any, context: Context) -> AsyncIterator[Any]:
            with span_for(context) as span:
                try:
                    async for item in behavior(request, context):
                        yield item
                except BaseException as e:
                    _finish(span, context, e)
                    raise
                _finish(span, context, None)

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
