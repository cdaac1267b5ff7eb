"""Tracing of a `koco` command: off unless the standard `OTEL_*` variables ask for it (as in
any OpenTelemetry program); then one trace per command, rooted in a `koco <command>` span,
so that the launch, the watch and every call of `koco run` are one trace with the node's
and the executor's spans — not one trace per call.

The command's last spans get at most `final_export_seconds` to leave: a collector that is
down delays the command's exit by that much at most, and is reported once on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind

from kodosumi.telemetry import NONE, Telemetry, TelemetryConfig, plan_export, tracer

SERVICE_NAME = "koco"
# A command's spans are few and the process ends with them: send them at once.
_CONFIG = TelemetryConfig(metrics=False, span_delay_seconds=0.2, final_export_seconds=2.0)


@contextmanager
def command_trace(command: str) -> Iterator[Span | None]:
    """The current span of one command while `OTEL_*` asks for traces; else None."""
    if plan_export(_CONFIG).traces == NONE:
        yield None
        return
    telemetry = Telemetry.install(_CONFIG, SERVICE_NAME)
    try:
        with tracer("kodoclient.cli").start_as_current_span(
            f"koco {command}".strip(), kind=SpanKind.INTERNAL
        ) as span:
            yield span
    finally:
        telemetry.close()
