"""`kodosumi.usage.*` counters from stored attempts' usage, read with an in-memory metric
reader of their own (no node: the drain path's side is in tests/observability/test_metrics.py)."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from kodosumid.event_store import AttemptUsage, ExecutionRecord, ModelUse
from kodosumid.observability.usage_metrics import UsageMetrics


def test_each_figure_is_counted_per_flow_model_and_kind() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    observer = UsageMetrics(meters.get_meter("test"))
    record = ExecutionRecord("e1", "search", "owner", 5, "", {}, 1)
    models = (ModelUse("gpt", 2, 100, 10), ModelUse("local", 1, 5, 1))
    observer.metered(
        record,
        [
            AttemptUsage(1, wall_seconds=2.0, cpu_seconds=0.5, tool_calls=3, models=models),
            AttemptUsage(2, wall_seconds=1.0, input_bytes=7, source="node"),
        ],
    )
    points: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for p in metric.data.data_points:
                    labels = tuple(sorted((k, str(v)) for k, v in (p.attributes or {}).items()))
                    points[(metric.name, labels)] = p.value  # type: ignore[union-attr]
    flow = (("flow", "search"),)
    assert points[("kodosumi.usage.runs", flow)] == 1  # two attempts, one run
    assert points[("kodosumi.usage.attempts", (*flow, ("source", "node")))] == 1
    assert points[("kodosumi.usage.wall", flow)] == 3.0
    assert points[("kodosumi.usage.cpu", flow)] == 0.5
    assert points[("kodosumi.usage.tool.calls", flow)] == 3
    assert points[("kodosumi.usage.bytes", (*flow, ("kind", "input")))] == 7
    gpt = (("direction", "input"), ("flow", "search"), ("model", "gpt"))
    assert points[("kodosumi.usage.llm.tokens", gpt)] == 100
    assert points[("kodosumi.usage.llm.calls", (*flow, ("model", "local")))] == 1
    meters.shutdown()
