"""A real OTLP/gRPC receiver on loopback: what an operator's collector would get.

Executors export from processes of their own, so the tests point the node (and through it
its executors) at this receiver, exactly as an operator points them at a collector, and
read back the spans and metrics that arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


def _value(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


def attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


@dataclass(frozen=True)
class SpanRecord:
    """A span as both sources (OTLP, the in-memory exporter) describe it."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    attributes: dict[str, Any] = field(hash=False, compare=False)
    error: bool = False
    # (name, attributes) of the span's events (exceptions among them).
    events: tuple[tuple[str, dict[str, Any]], ...] = field(default=(), hash=False, compare=False)
    kind: int = 0  # OTLP's numbering: 1 internal, 2 server, 3 client
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of each link


@dataclass(frozen=True)
class Point:
    name: str
    service: str
    attributes: dict[str, Any]
    value: float


def _point_value(point: Any) -> float:
    """A number point's value, or a histogram point's count."""
    fields = {f.name for f in point.DESCRIPTOR.fields}
    if "as_double" in fields:
        which = point.WhichOneof("value")
        return float(getattr(point, which)) if which else 0.0
    return float(getattr(point, "count", 0))


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = str(attributes(resource_spans.resource.attributes).get("service.name"))
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.collector.spans.append(
                        SpanRecord(
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.name,
                            service,
                            attributes(span.attributes),
                            span.status.code == 2,
                            tuple((e.name, attributes(e.attributes)) for e in span.events),
                            int(span.kind),
                            tuple((ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links),
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    async def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        for resource_metrics in request.resource_metrics:
            service = str(attributes(resource_metrics.resource.attributes).get("service.name"))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    data = getattr(metric, metric.WhichOneof("data") or "sum")
                    for point in getattr(data, "data_points", ()):
                        value = _point_value(point)
                        self.collector.points.append(
                            Point(metric.name, service, attributes(point.attributes), value)
                        )
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Collector:
    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.points: list[Point] = []
        self.server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)

    def latest(self, name: str, **labels: Any) -> float | None:
        """The last exported value of a metric point with these attributes (cumulative
        counters: the running total)."""
        found = [
            p.value
            for p in self.points
            if p.name == name and all(p.attributes.get(k) == v for k, v in labels.items())
        ]
        return found[-1] if found else None
