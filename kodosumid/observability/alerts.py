"""Alert rules at work: which stored facts and which lasting conditions raise an alert.

Two kinds of rules (configured in `kodosumid/observability/rules.py`):

- **Events** fire once, as the status change is stored: `execution_failed`,
  `execution_timed_out`. The alert names the execution and its trace.
- **Conditions** are checked by `evaluate()` every `evaluate_interval_seconds`; each fires
  once when its condition starts and once more, `resolved`, when it clears:
  `awaiting_input` (per execution, waiting longer than `after_seconds`), `node_offline`
  (per peer: the registry lists it OFFLINE or health checks fail), `heartbeat_lag` (this
  node's registry heartbeat overdue), `error_rate` (failed share of the executions that
  ended within the window).

The engine only decides; `raise_alert` receives each new alert as an `Event` (kind `alert`)
and the node stores it on its operator stream and hands it to webhooks
(`kodosumid/observability/wiring.py`). Time comes in as a clock, so the rules are tested without
sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kodosumi.bounded import bounded
from kodosumi.v1 import event_pb2
from kodosumid.event_store import ExecutionRecord, StatusChange
from kodosumid.observability.rules import (
    AWAITING_INPUT,
    ERROR_RATE,
    EXECUTION_FAILED,
    EXECUTION_TIMED_OUT,
    HEARTBEAT_LAG,
    NODE_OFFLINE,
    AlertRule,
    AlertsConfig,
)

S = event_pb2
# Characters of an alert's message (it quotes the failure reason a flow wrote).
MAX_MESSAGE_CHARS = 2048
_FAILURES = frozenset({S.EXECUTION_STATUS_FAILED, S.EXECUTION_STATUS_TIMED_OUT})
_ENDINGS = frozenset({S.EXECUTION_STATUS_SUCCEEDED}) | _FAILURES  # cancelled: no verdict


@dataclass(frozen=True, slots=True)
class PeerState:
    node_id: str
    offline: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NetworkView:
    """What the condition rules read about the node's network (callables, so the engine
    knows nothing of the peer table or the registration loop)."""

    peers: Callable[[], Iterable[PeerState]] = lambda: ()
    # Seconds the registry heartbeat is overdue; None without a registry.
    heartbeat_lag: Callable[[], float | None] = lambda: None


@dataclass
class _Waiting:
    record: ExecutionRecord
    since: float
    fired: set[str] = field(default_factory=set)


class AlertEngine:
    """An `ExecutionObserver` (executions/lifecycle.py) plus the periodic condition checks."""

    def __init__(
        self,
        config: AlertsConfig,
        node_id: str,
        raise_alert: Callable[[event_pb2.Event], None],
        *,
        network: NetworkView | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.raise_alert = raise_alert
        self.network = network or NetworkView()
        self.clock = clock
        self.rules = config.rules
        self._waiting: dict[str, _Waiting] = {}
        # (time, flow, failed) of executions that ended, for error-rate windows.
        self._endings: deque[tuple[float, str, bool]] = deque()
        self._window = max(
            (r.window_seconds for r in self.rules if r.kind == ERROR_RATE), default=0.0
        )
        # Conditions that fired and have not cleared: rule name -> subjects.
        self._active: dict[str, set[str]] = {}

    def _of(self, kind: str) -> list[AlertRule]:
        return [r for r in self.rules if r.kind == kind]

    # -- ExecutionObserver --------------------------------------------------------------------

    def launched(self, record: ExecutionRecord) -> None:
        pass

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        execution_id = record.execution_id
        for change in changes:
            status = change.status
            if status == S.EXECUTION_STATUS_AWAITING_INPUT:
                self._waiting.setdefault(execution_id, _Waiting(record, self.clock()))
                continue
            waiting = self._waiting.pop(execution_id, None)
            if waiting is not None:
                self._clear_waiting(execution_id, waiting)
            if status in _ENDINGS and self._window:
                self._endings.append((self.clock(), record.flow, status in _FAILURES))
            if status == S.EXECUTION_STATUS_FAILED:
                kind, verb = EXECUTION_FAILED, "failed"
            elif status == S.EXECUTION_STATUS_TIMED_OUT:
                kind, verb = EXECUTION_TIMED_OUT, "timed out"
            else:
                continue
            for rule in self._of(kind):
                if rule.covers(record.flow):
                    message = f"execution {execution_id} of flow {record.flow} {verb}"
                    if change.reason:
                        message += f": {change.reason}"
                    self._fire(rule, message, record=record, labels={"seq": str(change.seq)})

    # -- conditions ---------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Check the lasting conditions now (the node calls this periodically)."""
        now = self.clock()
        self._check_waiting(now)
        self._check_peers()
        self._check_heartbeat()
        self._check_error_rate(now)

    def _check_waiting(self, now: float) -> None:
        for execution_id, waiting in self._waiting.items():
            seconds = now - waiting.since
            for rule in self._of(AWAITING_INPUT):
                name = rule.rule_name
                if (
                    name in waiting.fired
                    or seconds < rule.after_seconds
                    or not rule.covers(waiting.record.flow)
                ):
                    continue
                waiting.fired.add(name)
                self._fire(
                    rule,
                    f"execution {execution_id} of flow {waiting.record.flow} has been "
                    f"awaiting input for {seconds:.0f} s",
                    record=waiting.record,
                    labels={"waiting_seconds": f"{seconds:.1f}"},
                )

    def _clear_waiting(self, execution_id: str, waiting: _Waiting) -> None:
        for rule in self._of(AWAITING_INPUT):
            if rule.rule_name in waiting.fired:
                self._fire(
                    rule,
                    f"execution {execution_id} of flow {waiting.record.flow} awaits input no more",
                    record=waiting.record,
                    resolved=True,
                )

    def _check_peers(self) -> None:
        rules = self._of(NODE_OFFLINE)
        if not rules:
            return
        states = {p.node_id: p for p in self.network.peers()}
        for rule in rules:
            active = self._active.setdefault(rule.rule_name, set())
            for node_id, state in states.items():
                if state.offline and node_id not in active:
                    active.add(node_id)
                    reason = f" ({state.reason})" if state.reason else ""
                    self._fire(rule, f"peer node {node_id} is offline{reason}", subject=node_id)
                elif not state.offline and node_id in active:
                    active.discard(node_id)
                    self._fire(rule, f"peer node {node_id} is back", subject=node_id, resolved=True)
            for node_id in active - set(states):
                active.discard(node_id)  # no source lists it any more: nothing to watch

    def _check_heartbeat(self) -> None:
        rules = self._of(HEARTBEAT_LAG)
        if not rules:
            return
        lag = self.network.heartbeat_lag()
        for rule in rules:
            active = self._active.setdefault(rule.rule_name, set())
            late = lag is not None and lag > rule.threshold_seconds
            if late and not active:
                active.add(self.node_id)
                self._fire(
                    rule,
                    f"registry heartbeat of node {self.node_id} is {lag:.1f} s overdue",
                    labels={"lag_seconds": f"{lag:.1f}"},
                )
            elif not late and active:
                active.clear()
                self._fire(
                    rule,
                    f"registry heartbeats of node {self.node_id} are on time again",
                    resolved=True,
                )

    def _check_error_rate(self, now: float) -> None:
        while self._endings and now - self._endings[0][0] > self._window:
            self._endings.popleft()
        for rule in self._of(ERROR_RATE):
            ended = failed = 0
            for at, flow, is_failure in self._endings:
                if now - at <= rule.window_seconds and rule.covers(flow):
                    ended += 1
                    failed += is_failure
            rate = failed / ended if ended else 0.0
            high = ended >= rule.min_executions and rate >= rule.threshold
            active = self._active.setdefault(rule.rule_name, set())
            labels = {"failed": str(failed), "ended": str(ended), "error_rate": f"{rate:.3f}"}
            scope = f" of flows {', '.join(rule.flows)}" if rule.flows else ""
            if high and not active:
                active.add("rate")
                self._fire(
                    rule,
                    f"{failed} of {ended} executions{scope} failed in the last "
                    f"{rule.window_seconds:g} s ({rate:.0%})",
                    labels=labels,
                )
            elif not high and active:
                active.clear()
                self._fire(
                    rule,
                    f"error rate{scope} back to {rate:.0%} over the last {rule.window_seconds:g} s",
                    labels=labels,
                    resolved=True,
                )

    # -- raising ------------------------------------------------------------------------------

    def _fire(
        self,
        rule: AlertRule,
        message: str,
        *,
        record: ExecutionRecord | None = None,
        subject: str = "",
        labels: dict[str, str] | None = None,
        resolved: bool = False,
    ) -> None:
        event = event_pb2.Event()
        alert = event.alert
        alert.rule = rule.rule_name
        alert.kind = rule.kind
        severity = event_pb2.ALERT_SEVERITY_INFO if resolved else rule.severity_value
        alert.severity = severity  # type: ignore[assignment]
        # A failure's reason is the flow's to write (an exception message of any size): the
        # alert log, its watchers and webhooks get at most MAX_MESSAGE_CHARS of it.
        alert.message = bounded(message, MAX_MESSAGE_CHARS)
        alert.node_id = self.node_id
        alert.subject_node_id = subject or self.node_id
        alert.resolved = resolved
        for key, value in (labels or {}).items():
            alert.labels[key] = value
        if record is not None:
            alert.flow = record.flow
            event.execution_id = record.execution_id
            event.trace_id = record.trace_id
            event.attempt = record.attempt
        self.raise_alert(event)
