"""OpenTelemetry for every kodosumi process: what to export, where to, and the W3C trace
context that ties a run together across the client, the node, its peers and the executors.

Export is off by default: nothing leaves the process unless the configuration (`[telemetry]`)
or the standard variables ask for it (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, or an
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`). Exporters are OTLP over gRPC or HTTP, or the console.

Traces use the process-wide tracer provider, as instrumentation libraries expect: `install`
creates an SDK provider when the process has none yet, or joins the one an embedding
application set up, and attaches its exporter through a processor it can detach again on
`close` (several nodes may live in one test process). Metrics get a meter provider of their
own per `Telemetry` when they are exported (a periodic reader cannot be added to a running
provider, and one component's shutdown must not silence another's); otherwise instruments
come from the global provider, a no-op unless the embedding application installed one.

Executors are separate processes: the node hands them its settings as environment variables
(`executor_env`), and each executor installs the same export there.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kodosumi import __version__

log = logging.getLogger(__name__)

NONE, OTLP, CONSOLE = "none", "otlp", "console"
EXPORTERS = (NONE, OTLP, CONSOLE)
GRPC, HTTP = "grpc", "http/protobuf"
PROTOCOLS = (GRPC, HTTP)
LOG_FORMATS = ("text", "json")
# Environment variables that carry the node's settings into its executors.
ENV_PREFIX = "KODOSUMI_TELEMETRY_"
_PROPAGATOR = TraceContextTextMapPropagator()
_T = TypeVar("_T")


class TelemetryConfigError(ValueError):
    """A `[telemetry]` setting is unusable; the message names it."""


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """`[telemetry]` of a daemon's configuration. Empty strings defer to the `OTEL_*`
    variables, then to the defaults (no export, OTLP over gRPC)."""

    # "otlp", "console" or "none"; empty: decided by the OTEL_* variables (default none).
    exporter: str = ""
    # "grpc" or "http/protobuf"; empty: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
    protocol: str = ""
    # OTLP endpoint: `host:port` or `http(s)://host:port` for gRPC, the base URL for HTTP
    # (`/v1/traces` and `/v1/metrics` are appended). Empty: OTEL_EXPORTER_OTLP_* decide.
    endpoint: str = ""
    # `key=value,key2=value2` sent with every export (auth tokens of a hosted backend).
    headers: str = ""
    # Plaintext gRPC to an endpoint given without a scheme.
    insecure: bool = False
    traces: bool = True
    metrics: bool = True
    metric_interval_seconds: float = 30.0
    # How long finished spans may wait before they are sent in a batch.
    span_delay_seconds: float = 2.0
    export_timeout_seconds: float = 10.0
    # Resource `service.name`; empty: the daemon's name.
    service_name: str = ""
    # "text" or "json" (one object per line) for the daemon's own log.
    log_format: str = "text"

    def check(self) -> None:
        if self.exporter not in ("", *EXPORTERS):
            raise TelemetryConfigError(f"telemetry.exporter: one of {', '.join(EXPORTERS)}")
        if self.protocol not in ("", *PROTOCOLS):
            raise TelemetryConfigError(f"telemetry.protocol: one of {', '.join(PROTOCOLS)}")
        if self.log_format not in LOG_FORMATS:
            raise TelemetryConfigError(f"telemetry.log_format: one of {', '.join(LOG_FORMATS)}")
        for name in ("metric_interval_seconds", "span_delay_seconds", "export_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise TelemetryConfigError(f"telemetry.{name}: must be positive")
        parse_headers(self.headers)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TelemetryConfig:
        """From a TOML table; unknown keys are an error (a typo must not silently disable)."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise TelemetryConfigError(
                    f"telemetry: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )
            values[key] = _coerce(key, known[key].type, value)
        config = cls(**values)
        config.check()
        return config

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], base: TelemetryConfig | None = None
    ) -> TelemetryConfig:
        """`KODOSUMI_TELEMETRY_<KEY>` variables over `base` (how executors get the node's)."""
        config = base or cls()
        changes = {
            f.name: _coerce(f.name, f.type, env[ENV_PREFIX + f.name.upper()])
            for f in fields(cls)
            if ENV_PREFIX + f.name.upper() in env
        }
        config = replace(config, **changes)
        config.check()
        return config

    def to_env(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[ENV_PREFIX + f.name.upper()] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return out


def _coerce(key: str, kind: Any, value: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind_name == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (TypeError, ValueError):
        raise TelemetryConfigError(f"telemetry.{key}: not a {kind_name}: {value!r}") from None


def parse_headers(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (the OTEL_EXPORTER_OTLP_HEADERS format) as a dict."""
    headers = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise TelemetryConfigError(f"telemetry.headers: {part!r} is not key=value")
        headers[key.strip().lower()] = value.strip()
    return headers


# -- what to export ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """The settled choice for one process (config over OTEL_* variables over defaults)."""

    traces: str = NONE
    metrics: str = NONE
    protocol: str = GRPC
    # Per signal; empty: the exporter reads the OTEL_* variables itself.
    traces_endpoint: str = ""
    metrics_endpoint: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    insecure: bool = False

    @property
    def exports(self) -> bool:
        return self.traces != NONE or self.metrics != NONE


def _exporter_from_env(env: Mapping[str, str], signal: str) -> str:
    chosen = env.get(f"OTEL_{signal.upper()}_EXPORTER", "").split(",")[0].strip().lower()
    if chosen in EXPORTERS:
        return chosen
    if chosen:
        log.warning("OTEL_%s_EXPORTER=%s is not supported here; not exporting", signal, chosen)
        return NONE
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    ):
        return OTLP
    return NONE


def plan_export(config: TelemetryConfig, env: Mapping[str, str] | None = None) -> ExportPlan:
    env = os.environ if env is None else env
    protocol = config.protocol or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "") or GRPC
    if protocol not in PROTOCOLS:
        log.warning("OTLP protocol %r is not supported; using grpc", protocol)
        protocol = GRPC

    def exporter(signal: str, wanted: bool) -> str:
        if not wanted:
            return NONE
        return config.exporter or _exporter_from_env(env, signal)

    def endpoint(path: str) -> str:
        if not config.endpoint:
            return ""
        if protocol == HTTP:
            base = config.endpoint.rstrip("/")
            if "://" not in base:
                base = ("http://" if config.insecure else "https://") + base
            return f"{base}/{path}"
        return config.endpoint

    return ExportPlan(
        traces=exporter("traces", config.traces),
        metrics=exporter("metrics", config.metrics),
        protocol=protocol,
        traces_endpoint=endpoint("v1/traces"),
        metrics_endpoint=endpoint("v1/metrics"),
        headers=parse_headers(config.headers),
        insecure=config.insecure,
    )


def _span_exporter(plan: ExportPlan, timeout: float) -> SpanExporter:
    if plan.traces == CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    kwargs: dict[str, Any] = {"timeout": timeout}
    if plan.traces_endpoint:
        kwargs["endpoint"] = plan.traces_endpoint
    if plan.headers:
        kwargs["headers"] = plan.headers
    if plan.protocol == HTTP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    if plan.insecure:
        kwargs["insecure"] = True
    return OTLPSpanExporter(**kwargs)


def _metric_exporter(plan: ExportPlan, timeout: float) -> MetricExporter:
    if plan.metrics == CONSOLE:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    kwargs: dict[str, Any] = {"timeout": timeout}
    if plan.metrics_endpoint:
        kwargs["endpoint"] = plan.metrics_endpoint
    if plan.headers:
        kwargs["headers"] = plan.headers
    if plan.protocol == HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    if plan.insecure:
        kwargs["insecure"] = True
    return OTLPMetricExporter(**kwargs)


class _Detachable(SpanProcessor):
    """A processor that can leave the shared tracer provider (which has no `remove`)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.attached = True

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if self.attached:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.attached:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        if self.attached:
            self.attached = False
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.attached else True


_install_lock = threading.Lock()


class Telemetry:
    """The export of one component of a process (a node, a registry, an executor)."""

    def __init__(
        self,
        plan: ExportPlan,
        *,
        span_processor: _Detachable | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.plan = plan
        self._span_processor = span_processor
        self._meter_provider = meter_provider

    @classmethod
    def install(
        cls,
        config: TelemetryConfig,
        service_name: str,
        *,
        attributes: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Telemetry:
        """Start exporting as `config` and the environment say (nothing by default)."""
        plan = plan_export(config, env)
        if not plan.exports:
            return cls(plan)
        resource = Resource.create(
            {
                "service.name": config.service_name or service_name,
                "service.version": __version__,
                **(attributes or {}),
            }
        )
        processor = None
        if plan.traces != NONE:
            exporter = _span_exporter(plan, config.export_timeout_seconds)
            inner: SpanProcessor
            if plan.traces == CONSOLE:
                inner = SimpleSpanProcessor(exporter)
            else:
                inner = BatchSpanProcessor(
                    exporter,
                    schedule_delay_millis=int(config.span_delay_seconds * 1000),
                    export_timeout_millis=int(config.export_timeout_seconds * 1000),
                )
            processor = _Detachable(inner)
            provider_of_process(resource).add_span_processor(processor)
        meter_provider = None
        if plan.metrics != NONE:
            reader = PeriodicExportingMetricReader(
                _metric_exporter(plan, config.export_timeout_seconds),
                export_interval_millis=config.metric_interval_seconds * 1000,
                export_timeout_millis=config.export_timeout_seconds * 1000,
            )
            # Not made global: each component (several nodes in one test process) exports
            # its own instruments, and closing one never silences another.
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        log.info(
            "telemetry: traces %s, metrics %s (%s%s)",
            plan.traces,
            plan.metrics,
            plan.protocol,
            f" to {plan.traces_endpoint or plan.metrics_endpoint}"
            if plan.traces_endpoint or plan.metrics_endpoint
            else "",
        )
        return cls(plan, span_processor=processor, meter_provider=meter_provider)

    @property
    def meter_provider(self) -> metrics.MeterProvider:
        """Where this component's instruments live."""
        return self._meter_provider or metrics.get_meter_provider()

    def meter(self, name: str, attributes: Mapping[str, str] | None = None) -> metrics.Meter:
        """A meter of this component. `attributes` tell apart components of one process that
        share the global provider (two nodes in a test): each gets instruments of its own."""
        return self.meter_provider.get_meter(
            name, __version__, attributes=dict(attributes) if attributes else None
        )

    def force_flush(self, timeout_seconds: float = 5.0) -> None:
        millis = int(timeout_seconds * 1000)
        if self._span_processor is not None:
            self._span_processor.force_flush(millis)
        else:
            provider = trace.get_tracer_provider()
            if isinstance(provider, TracerProvider):
                provider.force_flush(millis)
        if self._meter_provider is not None:
            self._meter_provider.force_flush(millis)

    def close(self) -> None:
        """Send what is pending and stop exporting (blocks up to the export timeout)."""
        if self._span_processor is not None:
            self._span_processor.force_flush(5_000)
            self._span_processor.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()


def provider_of_process(resource: Resource | None = None) -> TracerProvider:
    """The process's SDK tracer provider: the global one, created and set if there is none."""
    with _install_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        provider = TracerProvider(resource=resource or Resource.create({}))
        trace.set_tracer_provider(provider)
        return provider


def tracing_active() -> bool:
    """Whether spans of this process are recorded (an SDK tracer provider is installed)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name, __version__)


# -- W3C trace context ------------------------------------------------------------------------


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


def client_interceptors() -> list[Any] | None:
    """Client spans and W3C trace context on a new channel's calls, while the process traces.

    Decided when a channel opens: channels of a process that traces nothing carry no
    interceptor at all (their streaming calls keep the plain call object).
    """
    if not tracing_active():
        return None
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[Any] = aio_client_interceptors()  # type: ignore[no-untyped-call]
    return interceptors


async def in_context(coro: Coroutine[Any, Any, _T], ctx: otel_context.Context) -> _T:
    """Await `coro` with `ctx` as the current OpenTelemetry context (a coroutine handed to
    another thread's event loop keeps the caller's trace)."""
    token = otel_context.attach(ctx)
    try:
        return await coro
    finally:
        otel_context.detach(token)
