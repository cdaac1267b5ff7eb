"""What operators see of a node: metrics, alerts, their log and webhooks, run traces.

- `wiring`: `NodeObservability` builds and starts the pieces below.
- `metrics`: OpenTelemetry instruments fed by execution lifecycle changes.
- `usage_metrics`: `kodosumi.usage.*` counters fed by each attempt's stored usage.
- `rules`, `alerts`: alert rule configuration and the engine that evaluates it.
- `alert_log`: the stored alert stream behind `WatchAlerts`; `webhooks`: delivery with retries.
- `run_trace`: the trace context carried by each execution.
"""
