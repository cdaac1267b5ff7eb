"""With the collector down, a process stops within its final-export bound (not the export
timeout and its retries), and says once that it cannot export — not once per batch, and
not never. Real OTLP/gRPC exporters against a loopback port nobody listens on.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from kodosumi.telemetry import Telemetry, TelemetryConfig, tracer
from tests.observability.conftest import Telemetry as InMemory


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"  # closed again: connections are refused


def test_close_is_bounded_and_the_failure_is_said_once(
    telemetry: InMemory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = TelemetryConfig(
        exporter="otlp",
        endpoint=dead_endpoint(),
        insecure=True,
        span_delay_seconds=0.1,
        metric_interval_seconds=0.2,
        export_timeout_seconds=10.0,
        final_export_seconds=1.0,
    )
    exporting = Telemetry.install(config, "down-test")
    counter = exporting.meter("down-test").create_counter("kodosumi.test.counter")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # several batches fail while we work
        with tracer("down-test").start_as_current_span("work"):
            counter.add(1)
        time.sleep(0.1)
    started = time.monotonic()
    exporting.close()
    took = time.monotonic() - started
    # The final export waits at most final_export_seconds (plus shutting down), not the
    # 10 s export timeout with its retries per signal.
    assert took < 3.0, f"close took {took:.1f} s with the collector down"

    said = [r for r in caplog.records if "cannot export" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert said[0].levelno == logging.WARNING and config.endpoint in said[0].getMessage()
    noise = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert not [r for r in noise if r.levelno >= logging.WARNING]
