"""Tracing setup of a component (a node, a registry, an executor): `Telemetry.install`
joins or creates the process's SDK tracer provider and attaches its exporter through a
processor it can detach again on `close`; metrics get a provider per component
(`kodosumi.telemetry.export`). Also whether the process traces, and the client
interceptors that carry spans and trace context on new channels.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from kodosumi import __version__
from kodosumi.telemetry.config import CONSOLE, NONE, ExportPlan, TelemetryConfig, plan_export
from kodosumi.telemetry.export import meter_provider as metrics_provider
from kodosumi.telemetry.export import metric_exporter, span_exporter
from kodosumi.telemetry.health import ExportHealth

log = logging.getLogger("kodosumi.telemetry")


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
        exporters: tuple[SpanExporter | None, MetricExporter | None] = (None, None),
        health: ExportHealth | None = None,
        final_seconds: float = 2.0,
    ) -> None:
        self.plan = plan
        self._span_processor = span_processor
        self._meter_provider = meter_provider
        self._exporters = exporters
        self._health = health
        self.final_seconds = final_seconds

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
        health = ExportHealth(plan.traces_endpoint or plan.metrics_endpoint)
        processor = None
        spans: SpanExporter | None = None
        if plan.traces != NONE:
            spans = span_exporter(plan, config.export_timeout_seconds, health)
            inner: SpanProcessor
            if plan.traces == CONSOLE:
                inner = SimpleSpanProcessor(spans)
            else:
                inner = BatchSpanProcessor(
                    spans,
                    schedule_delay_millis=int(config.span_delay_seconds * 1000),
                    export_timeout_millis=int(config.export_timeout_seconds * 1000),
                )
            processor = _Detachable(inner)
            provider_of_process(resource).add_span_processor(processor)
        meter_provider = None
        measures: MetricExporter | None = None
        if plan.metrics != NONE:
            measures = metric_exporter(plan, config.export_timeout_seconds, health)
            meter_provider = metrics_provider(plan, config, resource, measures)
        log.info(
            "telemetry: traces %s, metrics %s (%s%s)",
            plan.traces,
            plan.metrics,
            plan.protocol,
            f" to {plan.traces_endpoint or plan.metrics_endpoint}"
            if plan.traces_endpoint or plan.metrics_endpoint
            else "",
        )
        return cls(
            plan,
            span_processor=processor,
            meter_provider=meter_provider,
            exporters=(spans, measures),
            health=health,
            final_seconds=config.final_export_seconds,
        )

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
        """Send what is pending, waiting at most `final_export_seconds`, then stop exporting.

        Bounded whatever the collector does: the last flush runs beside the caller, and what
        is still being sent when the time is up is given up (the exporters are shut down
        first, which ends their retries and calls in flight).
        """
        if self._span_processor is None and self._meter_provider is None:
            return
        last = threading.Thread(
            target=self._last_flush, name="kodosumi-telemetry-final", daemon=True
        )
        last.start()
        last.join(self.final_seconds)
        for exporter in self._exporters:
            if exporter is not None:
                with contextlib.suppress(Exception):
                    exporter.shutdown()
        if self._span_processor is not None:
            self._span_processor.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown(timeout_millis=self.final_seconds * 1000)
        if self._health is not None:
            self._health.detach()

    def _last_flush(self) -> None:
        with contextlib.suppress(Exception):
            self.force_flush(self.final_seconds)


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
