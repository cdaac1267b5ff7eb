"""Client spans of the SDK: one per call, the parent of the gRPC client span that carries the
W3C trace context to the node (`kodosumi/rpc/channel.py`).

They are recorded only when the application installed an OpenTelemetry SDK tracer provider;
otherwise the API's no-op tracer makes them free.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kodoclient.errors import KodoclientError, explain_transport
from kodosumi import __version__

_Resp = TypeVar("_Resp")

_TRACER = trace.get_tracer("kodoclient", __version__)


@contextmanager
def call_span(
    method: str, target: str, attributes: Mapping[str, str] | None = None
) -> Iterator[Span]:
    """The current span of one SDK call (`kodoclient LaunchExecution`)."""
    with _TRACER.start_as_current_span(
        f"kodoclient {method}",
        kind=SpanKind.INTERNAL,
        attributes={"rpc.method": method, "server.address": target, **(attributes or {})},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as e:
            fail(span, e)
            raise


def stream_span(method: str, target: str, attributes: Mapping[str, str] | None = None) -> Span:
    """A span for a stream the caller iterates (not current: a generator cannot hold the
    context across its yields); use `trace.use_span` around starting each call."""
    return _TRACER.start_span(
        f"kodoclient {method}",
        kind=SpanKind.INTERNAL,
        attributes={"rpc.method": method, "server.address": target, **(attributes or {})},
    )


def fail(span: Span, error: BaseException) -> None:
    if isinstance(error, GeneratorExit):
        return
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))


async def traced_unary(
    method: str,
    target: str,
    call: Callable[..., Awaitable[_Resp]],
    request: Any,
    deadline_seconds: float,
    *,
    secure: bool = True,
    attributes: Mapping[str, str] | None = None,
) -> _Resp:
    """One unary call in its client span, with a deadline; gRPC errors become
    `KodoclientError` naming the method (shared by the node and registry clients), a
    TLS/plaintext mismatch said plainly (`secure`: whether this client speaks TLS)."""
    with call_span(method, target, attributes):
        try:
            return await call(request, timeout=deadline_seconds)
        except grpc.aio.AioRpcError as e:
            error = KodoclientError.from_rpc(e, method)
            raise explain_transport(error, target, secure) from None
