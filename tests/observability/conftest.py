"""Fixtures for the observability tests: this process's OpenTelemetry (an in-memory span
exporter and an in-memory metric reader, as an embedding application would install them),
a loopback OTLP collector, and nodes that export to it.

The process-wide providers are installed for this package only and reset afterwards (the
way OpenTelemetry's own test utilities do), so the test modules after this package run with
tracing off, as they were written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from kodosumi.telemetry import TelemetryConfig
from kodosumid.app import NodeApp
from kodosumid.config import DiscoveryConfig, NodeConfig
from tests.node.conftest import RunningNode, node_config, ray_cluster  # noqa: F401  (a fixture)
from tests.observability.collector import Collector, SpanRecord
from tests.peers.conftest import cluster  # noqa: F401  (a fixture)


def _reset_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    metrics_internal = metrics._internal  # type: ignore[attr-defined]
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[SpanRecord]:
        records = []
        for span in self.spans.get_finished_spans():
            context = span.get_span_context()
            assert context is not None
            records.append(
                SpanRecord(
                    f"{context.trace_id:032x}",
                    f"{context.span_id:016x}",
                    f"{span.parent.span_id:016x}" if span.parent else "",
                    span.name,
                    str(span.resource.attributes.get("service.name", "")),
                    dict(span.attributes or {}),
                    span.status.status_code.name == "ERROR",
                    tuple((e.name, dict(e.attributes or {})) for e in span.events),
                    span.kind.value + 1,  # the API counts from 0, OTLP from 1
                    tuple(
                        (f"{ln.context.trace_id:032x}", f"{ln.context.span_id:016x}")
                        for ln in span.links
                    ),
                )
            )
        return records

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += list(metric.data.data_points)
        return found

    def total(self, name: str, **labels: Any) -> float:
        """Sum of a counter's (or gauge's) points with these attributes."""
        return sum(
            getattr(p, "value", getattr(p, "count", 0))
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in labels.items())
        )


@pytest.fixture(scope="package")
def telemetry() -> Iterator[Telemetry]:
    # Earlier tests in this process may have installed providers (a node that starts
    # telemetry does); OpenTelemetry refuses to replace them, so start from none.
    _reset_globals()
    installed = Telemetry()
    trace.set_tracer_provider(installed.provider)
    metrics.set_meter_provider(installed.meters)
    yield installed
    # Tracers handed out before the reset keep this provider; its exporter now drops quietly.
    installed.spans.shutdown()
    installed.meters.shutdown()
    _reset_globals()


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    receiver = Collector()
    await receiver.start()
    yield receiver
    await receiver.stop()


def exporting(collector: Collector) -> TelemetryConfig:
    """Export everything to the loopback collector, quickly (tests poll for it)."""
    return TelemetryConfig(
        exporter="otlp",
        endpoint=collector.endpoint,
        insecure=True,
        span_delay_seconds=0.1,
        metric_interval_seconds=0.5,
        export_timeout_seconds=5.0,
    )


def with_telemetry(config: NodeConfig, telemetry_config: TelemetryConfig) -> NodeConfig:
    return replace(config, telemetry=telemetry_config)


@pytest.fixture
async def nodes(
    ray_cluster: None,  # noqa: F811
    telemetry: Telemetry,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Any]:
    """Start nodes (`await nodes(**node_config changes)`); all stop at the end."""
    running: list[RunningNode] = []

    async def start(**changes: Any) -> RunningNode:
        state = tmp_path_factory.mktemp("obs-node")
        # No LAN discovery: other test processes' nodes on this machine are not our peers.
        changes.setdefault("discovery", DiscoveryConfig(enabled=False))
        app = NodeApp(node_config(state, **changes))
        await app.start()
        node = RunningNode(app)
        running.append(node)
        return node

    yield start
    for node in running:
        await node.close()
        await node.app.stop()
