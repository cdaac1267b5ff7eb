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

The rooms: `config` (`[telemetry]` and the export plan), `export` (exporters and the metrics
provider), `tracing` (`Telemetry`, the process's tracer provider, client interceptors) and
`context` (W3C trace context). Everything is importable from `kodosumi.telemetry` as before.
"""

from kodosumi.telemetry.config import (
    CONSOLE,
    ENV_PREFIX,
    EXPORTERS,
    GRPC,
    HTTP,
    LOG_FORMATS,
    NONE,
    OTLP,
    PROTOCOLS,
    ExportPlan,
    TelemetryConfig,
    TelemetryConfigError,
    parse_headers,
    plan_export,
)
from kodosumi.telemetry.context import (
    context_from_traceparent,
    current_trace_ids,
    current_traceparent,
    ids_of,
    in_context,
    traceparent_for_trace,
    traceparent_of,
)
from kodosumi.telemetry.tracing import (
    Telemetry,
    client_interceptors,
    provider_of_process,
    tracer,
    tracing_active,
)

__all__ = [
    "CONSOLE",
    "ENV_PREFIX",
    "EXPORTERS",
    "GRPC",
    "HTTP",
    "LOG_FORMATS",
    "NONE",
    "OTLP",
    "PROTOCOLS",
    "ExportPlan",
    "Telemetry",
    "TelemetryConfig",
    "TelemetryConfigError",
    "client_interceptors",
    "context_from_traceparent",
    "current_trace_ids",
    "current_traceparent",
    "ids_of",
    "in_context",
    "parse_headers",
    "plan_export",
    "provider_of_process",
    "traceparent_for_trace",
    "traceparent_of",
    "tracer",
    "tracing_active",
]
