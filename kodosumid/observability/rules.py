"""Alert rules and webhooks as configured (`[alerts]` in the node's TOML file).

```toml
[alerts]
evaluate_interval_seconds = 5.0   # how often lasting conditions are checked
keep = 1000                       # alerts kept for `kodoclient alerts` (in <state>/alerts.sqlite)

[[alerts.rules]]
kind = "execution_failed"         # see KINDS below
name = "failed"                   # default: the kind
severity = "critical"             # info | warning | critical (default warning)
flows = ["hello"]                 # only these flows (execution rules); default: all

[[alerts.rules]]
kind = "awaiting_input"
after_seconds = 600               # waiting longer than this

[[alerts.rules]]
kind = "heartbeat_lag"
threshold_seconds = 30            # registry heartbeat overdue by more than this

[[alerts.rules]]
kind = "error_rate"
window_seconds = 300              # over the last 5 minutes ...
threshold = 0.5                   # ... at least half of the ended executions failed
min_executions = 4                # ... and at least this many ended

[[alerts.webhooks]]
url = "https://hooks.example.com/kodosumi"
rules = ["failed"]                # only alerts of these rules; default: all
headers = { Authorization = "Bearer ..." }
timeout_seconds = 5.0
max_attempts = 5                  # delivery attempts, with exponential backoff
backoff_seconds = 1.0             # the first pause; doubles up to max_backoff_seconds
max_backoff_seconds = 60.0
```

Without an `[alerts]` section a node raises the default rules (failed and timed-out
executions, peers going offline) on its operator stream and calls no webhook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2

EXECUTION_FAILED = "execution_failed"
EXECUTION_TIMED_OUT = "execution_timed_out"
AWAITING_INPUT = "awaiting_input"
NODE_OFFLINE = "node_offline"
HEARTBEAT_LAG = "heartbeat_lag"
ERROR_RATE = "error_rate"
KINDS = (
    EXECUTION_FAILED,
    EXECUTION_TIMED_OUT,
    AWAITING_INPUT,
    NODE_OFFLINE,
    HEARTBEAT_LAG,
    ERROR_RATE,
)
# Rules about one execution (they honour `flows`).
EXECUTION_KINDS = frozenset({EXECUTION_FAILED, EXECUTION_TIMED_OUT, AWAITING_INPUT})

SEVERITIES = {
    "info": event_pb2.ALERT_SEVERITY_INFO,
    "warning": event_pb2.ALERT_SEVERITY_WARNING,
    "critical": event_pb2.ALERT_SEVERITY_CRITICAL,
}


@dataclass(frozen=True, slots=True)
class AlertRule:
    kind: str
    name: str = ""
    severity: str = "warning"
    flows: tuple[str, ...] = ()
    # awaiting_input: waiting longer than this.
    after_seconds: float = 300.0
    # heartbeat_lag: overdue by more than this.
    threshold_seconds: float = 30.0
    # error_rate: failed / ended over the window, with at least `min_executions` ended.
    window_seconds: float = 300.0
    threshold: float = 0.5
    min_executions: int = 4

    @property
    def rule_name(self) -> str:
        return self.name or self.kind

    @property
    def severity_value(self) -> int:
        return SEVERITIES[self.severity]

    def covers(self, flow: str) -> bool:
        return not self.flows or flow in self.flows


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    rules: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float = 5.0
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def wants(self, rule: str) -> bool:
        return not self.rules or rule in self.rules


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(EXECUTION_FAILED),
    AlertRule(EXECUTION_TIMED_OUT),
    AlertRule(NODE_OFFLINE),
)


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    rules: tuple[AlertRule, ...] = DEFAULT_RULES
    webhooks: tuple[Webhook, ...] = ()
    evaluate_interval_seconds: float = 5.0
    keep: int = 1000
    # Queued deliveries per webhook while its receiver is away (oldest dropped beyond).
    webhook_queue: int = 1000


def _number(raw: Mapping[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise InvalidArgument.field(f"{where}.{key}", f"a number of at least {minimum:g}")
    return float(value)


def _whole(raw: Mapping[str, Any], key: str, where: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgument.field(f"{where}.{key}", f"a whole number from {lo} to {hi}")
    return value


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument.field(f"{where}.{key}", "a list of strings")
    return tuple(value)


_RULE_KEYS = frozenset(AlertRule.__dataclass_fields__)
_WEBHOOK_KEYS = frozenset(Webhook.__dataclass_fields__)


def _rule(raw: Mapping[str, Any], where: str) -> AlertRule:
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise InvalidArgument.field(f"{where}", f"unknown keys {', '.join(sorted(unknown))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise InvalidArgument.field(f"{where}.kind", f"one of {', '.join(KINDS)}")
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise InvalidArgument.field(f"{where}.severity", f"one of {', '.join(SEVERITIES)}")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise InvalidArgument.field(f"{where}.name", "a string")
    threshold = _number(raw, "threshold", where, 0.5, 0.0)
    if threshold > 1:
        raise InvalidArgument.field(f"{where}.threshold", "a fraction from 0 to 1")
    min_executions = _whole(raw, "min_executions", where, 4, 1, 1_000_000)
    return AlertRule(
        kind=kind,
        name=name,
        severity=severity,
        flows=_strings(raw, "flows", where),
        after_seconds=_number(raw, "after_seconds", where, 300.0, 0.0),
        threshold_seconds=_number(raw, "threshold_seconds", where, 30.0, 0.0),
        window_seconds=_number(raw, "window_seconds", where, 300.0, 1.0),
        threshold=threshold,
        min_executions=min_executions,
    )


def _webhook(raw: Mapping[str, Any], where: str) -> Webhook:
    unknown = set(raw) - _WEBHOOK_KEYS
    if unknown:
        raise InvalidArgument.field(f"{where}", f"unknown keys {', '.join(sorted(unknown))}")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidArgument.field(f"{where}.url", "an http:// or https:// URL")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidArgument.field(f"{where}.headers", "a table of strings")
    attempts = _whole(raw, "max_attempts", where, 5, 1, 100)
    return Webhook(
        url=url,
        rules=_strings(raw, "rules", where),
        headers=tuple(sorted(headers.items())),
        timeout_seconds=_number(raw, "timeout_seconds", where, 5.0, 0.01),
        max_attempts=attempts,
        backoff_seconds=_number(raw, "backoff_seconds", where, 1.0, 0.0),
        max_backoff_seconds=_number(raw, "max_backoff_seconds", where, 60.0, 0.0),
    )


def alerts_config(raw: Mapping[str, Any]) -> AlertsConfig:
    """`[alerts]` of the node's TOML file; errors name the bad key (`alerts.rules[0].kind`)."""
    known = {"rules", "webhooks", "evaluate_interval_seconds", "keep", "webhook_queue"}
    unknown = set(raw) - known
    if unknown:
        raise InvalidArgument.field("alerts", f"unknown keys {', '.join(sorted(unknown))}")
    rules_raw = raw.get("rules", None)
    rules: tuple[AlertRule, ...] = DEFAULT_RULES
    if rules_raw is not None:
        if not isinstance(rules_raw, list):
            raise InvalidArgument.field("alerts.rules", "a list of tables ([[alerts.rules]])")
        rules = tuple(_rule(r, f"alerts.rules[{i}]") for i, r in enumerate(rules_raw))
    hooks_raw = raw.get("webhooks", [])
    if not isinstance(hooks_raw, list):
        raise InvalidArgument.field("alerts.webhooks", "a list of tables ([[alerts.webhooks]])")
    webhooks = tuple(_webhook(h, f"alerts.webhooks[{i}]") for i, h in enumerate(hooks_raw))
    names = [r.rule_name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        names_text = ", ".join(duplicates)
        raise InvalidArgument.field("alerts.rules", f"duplicate rule names: {names_text}")
    keep = _whole(raw, "keep", "alerts", 1000, 1, 10_000_000)
    queue = _whole(raw, "webhook_queue", "alerts", 1000, 1, 1_000_000)
    return AlertsConfig(
        rules=rules,
        webhooks=webhooks,
        evaluate_interval_seconds=_number(raw, "evaluate_interval_seconds", "alerts", 5.0, 0.01),
        keep=keep,
        webhook_queue=queue,
    )
