"""Whether export works, said once: when a collector stops answering, a process logs one
warning naming where it exports to and why (and one line when it works again), instead of
an error per batch — or nothing at all, as the exporters' own messages are easy to miss.

The OTLP exporters log every failed attempt themselves; `ExportHealth` takes those records
over (a logging filter keeps their detail for its own message and drops them) while this
process exports through it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("kodosumi.telemetry")

# The loggers of the OTLP exporters (gRPC and HTTP), which log each failed attempt.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
)


def _endpoint_of_env() -> str:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if os.environ.get(name):
            return os.environ[name]
    return "the default OTLP endpoint"


class ExportHealth(logging.Filter):
    """One process's export to one place: failing or not, each change said once."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where or _endpoint_of_env()
        self.failing = False
        self._lock = threading.Lock()
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """The exporter's own message: ours says it (once) as soon as a first attempt
        fails, not after the retries; the exporter's is not printed."""
        if record.levelno < logging.WARNING:
            return True
        if "shutdown" not in record.getMessage().lower():  # our own stop, not a failure
            self._change(False, record.getMessage())
        return False

    def outcome(self, ok: bool, signal: str) -> None:
        self._change(ok, f"{signal} were not accepted")

    def _change(self, ok: bool, detail: str) -> None:
        with self._lock:
            if ok == (not self.failing):
                return
            self.failing = not ok
        if ok:
            log.info("telemetry: exporting to %s again", self.where)
        else:
            log.warning(
                "telemetry: cannot export to %s (%s); dropping spans and metrics until it "
                "answers (said once)",
                self.where,
                detail,
            )

    def detach(self) -> None:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self)


class ReportingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, health: ExportHealth) -> None:
        self.inner = inner
        self.health = health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.health.outcome(result == SpanExportResult.SUCCESS, "spans")
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class ReportingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, health: ExportHealth) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.health = health

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.health.outcome(result == MetricExportResult.SUCCESS, "metrics")
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
