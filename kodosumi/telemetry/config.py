"""`[telemetry]` of a daemon's configuration and the export it settles on: the config
over the standard `OTEL_*` variables over the defaults (no export, OTLP over gRPC).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kodosumi.config_loader import ConfigError, build, env_values, table

log = logging.getLogger("kodosumi.telemetry")

NONE, OTLP, CONSOLE = "none", "otlp", "console"
EXPORTERS = (NONE, OTLP, CONSOLE)
GRPC, HTTP = "grpc", "http/protobuf"
PROTOCOLS = (GRPC, HTTP)
LOG_FORMATS = ("text", "json")
# Environment variables that carry the node's settings into its executors.
ENV_PREFIX = "KODOSUMI_TELEMETRY_"


class TelemetryConfigError(ConfigError):
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
    # How long a stopping process waits for its last spans and metrics to leave: a
    # collector that is down must not hold up SIGTERM for the export timeout.
    final_export_seconds: float = 2.0
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
        for name in (
            "metric_interval_seconds",
            "span_delay_seconds",
            "export_timeout_seconds",
            "final_export_seconds",
        ):
            if getattr(self, name) <= 0:
                raise TelemetryConfigError(f"telemetry.{name}: must be positive")
        parse_headers(self.headers)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TelemetryConfig:
        """From a TOML table; unknown keys are an error (a typo must not silently disable).
        Read by the daemons' shared loader (`kodosumi.config_loader`)."""
        try:
            config = build(cls, table(cls, data, label="telemetry"))
        except ConfigError as e:
            raise TelemetryConfigError(str(e)) from None
        config.check()
        return config

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], base: TelemetryConfig | None = None
    ) -> TelemetryConfig:
        """`KODOSUMI_TELEMETRY_<KEY>` variables over `base` (how executors get the node's)."""
        try:
            changes = env_values(cls, env, ENV_PREFIX)
        except ConfigError as e:
            raise TelemetryConfigError(str(e)) from None
        config = replace(base or cls(), **changes)
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


def parse_headers(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (the OTEL_EXPORTER_OTLP_HEADERS format) as a dict."""
    headers = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise TelemetryConfigError(f"telemetry.headers: {part!r} is not key=value")
        headers[key.strip().lower()] = value.strip()
    return headers


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
