"""Where spans and metrics go: the OTLP (gRPC or HTTP) or console exporter an `ExportPlan`
names, and the meter provider with its periodic reader when metrics are exported.
Exporter packages are imported only when chosen.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from kodosumi.telemetry.config import CONSOLE, HTTP, ExportPlan, TelemetryConfig
from kodosumi.telemetry.health import ExportHealth, ReportingMetricExporter, ReportingSpanExporter


def _one_line(span: ReadableSpan) -> str:
    # One span per line: readable in a log stream, and an executor's spans reach the node's
    # output line by line (kodosumid/executors/ray_output.py) without being torn apart.
    return str(span.to_json(indent=None)) + "\n"


def span_exporter(
    plan: ExportPlan, timeout: float, health: ExportHealth | None = None
) -> SpanExporter:
    """The exporter the plan names; an OTLP one reports through `health` when given."""
    exporter = _span_exporter(plan, timeout)
    if health is not None and plan.traces != CONSOLE:
        return ReportingSpanExporter(exporter, health)
    return exporter


def _span_exporter(plan: ExportPlan, timeout: float) -> SpanExporter:
    if plan.traces == CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(formatter=_one_line)
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


def metric_exporter(
    plan: ExportPlan, timeout: float, health: ExportHealth | None = None
) -> MetricExporter:
    exporter = _metric_exporter(plan, timeout)
    if health is not None and plan.metrics != CONSOLE:
        return ReportingMetricExporter(exporter, health)
    return exporter


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


def meter_provider(
    plan: ExportPlan, config: TelemetryConfig, resource: Resource, exporter: MetricExporter
) -> MeterProvider:
    """A meter provider of one component that exports on a period.

    Not made global: each component (several nodes in one test process) exports its own
    instruments, and closing one never silences another.
    """
    reader = PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=config.metric_interval_seconds * 1000,
        export_timeout_millis=config.export_timeout_seconds * 1000,
    )
    return MeterProvider(resource=resource, metric_readers=[reader])
