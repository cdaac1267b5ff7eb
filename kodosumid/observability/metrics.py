"""The node's metrics: executions started and finished by flow and status, run durations,
events stored, queue depth, pool size, watchers, heartbeat lag, alerts.

Instruments are OpenTelemetry ones (exported as `[telemetry]` says, see
`kodosumi/telemetry/`). The same counts, as plain totals since the node started, go into
`NodeLoad` so `kodoclient top` can show rates without an OpenTelemetry backend.

Gauges are read by the metric reader on its own thread; they report a `Sample` the node
takes on its event loop (`sample()`), never live structures that the loop is changing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kodosumi.statuses import status_word
from kodosumi.v1 import event_pb2, node_pb2
from kodosumid.event_store import TERMINAL, ExecutionRecord, StatusChange
from kodosumid.executions.relay import peer_of

# Buckets for run durations in seconds: sub-second plain flows to hour-long crews.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_QUEUED = (event_pb2.EXECUTION_STATUS_PENDING, event_pb2.EXECUTION_STATUS_STARTING)
# The statuses `kodosumi.executions.active` always reports (0 when none is in it).
ACTIVE = (
    *_QUEUED,
    event_pb2.EXECUTION_STATUS_RUNNING,
    event_pb2.EXECUTION_STATUS_AWAITING_INPUT,
    event_pb2.EXECUTION_STATUS_RETRYING,
    event_pb2.EXECUTION_STATUS_PEER_LOST,
)


def status_label(status: int) -> str:
    return status_word(status, unknown=str(status)).lower()


@dataclass
class Sample:
    """Gauge values taken on the event loop."""

    by_status: dict[int, int] = field(default_factory=dict)
    executors: int = 0
    warm_executors: int = 0
    watchers: int = 0
    # None: the node has no registry.
    heartbeat_lag: float | None = None


@dataclass
class Totals:
    """Counts since the node started (what NodeLoad reports)."""

    started: int = 0
    finished: int = 0
    failed: int = 0
    events: int = 0
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class Sources:
    """Where `sample()` reads the node's state (callables, so this module stays unaware of
    the manager, the pool and the network)."""

    counts: Callable[[], dict[int, int]] = dict
    pool: Callable[[], tuple[int, int]] = lambda: (0, 0)
    watchers: Callable[[], int] = lambda: 0
    heartbeat_lag: Callable[[], float | None] = lambda: None


class NodeMetrics:
    """An `ExecutionObserver` (executions/lifecycle.py) that records the node's metrics."""

    def __init__(
        self,
        meter: metrics.Meter,
        sources: Sources | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sources = sources or Sources()
        self.clock = clock
        self.totals = Totals()
        self.current = Sample()
        self._started = meter.create_counter(
            "kodosumi.executions.started", unit="{execution}", description="Executions launched"
        )
        self._finished = meter.create_counter(
            "kodosumi.executions.finished",
            unit="{execution}",
            description="Executions ended, by flow and terminal status",
        )
        self._duration = meter.create_histogram(
            "kodosumi.execution.duration",
            unit="s",
            description="Launch to terminal status, by flow and status",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._events = meter.create_counter(
            "kodosumi.events.stored",
            unit="{event}",
            description="Events stored (their rate is the node's events per second)",
        )
        self._alerts = meter.create_counter(
            "kodosumi.alerts.fired", unit="{alert}", description="Alerts raised, by rule"
        )
        self._webhooks = meter.create_counter(
            "kodosumi.alerts.webhook_deliveries",
            unit="{delivery}",
            description="Webhook deliveries of alerts, by outcome",
        )
        meter.create_observable_gauge(
            "kodosumi.executions.active",
            [self._observe_active],
            unit="{execution}",
            description="Executions not ended yet, by status",
        )
        meter.create_observable_gauge(
            "kodosumi.queue.depth",
            [self._observe_queue],
            unit="{execution}",
            description="Executions launched and waiting for an executor to start them",
        )
        meter.create_observable_gauge(
            "kodosumi.pool.executors",
            [self._observe_pool],
            unit="{actor}",
            description="Executor actors alive, and warm spares among them",
        )
        meter.create_observable_gauge(
            "kodosumi.watchers",
            [self._observe_watchers],
            unit="{stream}",
            description="Open WatchExecution streams",
        )
        meter.create_observable_gauge(
            "kodosumi.registry.heartbeat_lag",
            [self._observe_heartbeat],
            unit="s",
            description="How far the node's registry heartbeat is overdue (0: on time)",
        )

    # -- ExecutionObserver --------------------------------------------------------------------

    def launched(self, record: ExecutionRecord) -> None:
        self.totals.started += 1
        self._started.add(1, self._labels(record))

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        self.totals.events += events
        self._events.add(events)
        for change in changes:
            if change.status not in TERMINAL:
                continue
            self.totals.finished += 1
            if change.status != event_pb2.EXECUTION_STATUS_SUCCEEDED:
                self.totals.failed += 1
            labels = {**self._labels(record), "status": status_label(change.status)}
            self._finished.add(1, labels)
            seconds = max(0.0, (self.clock() - record.create_ns) / 1e9)
            self._duration.record(seconds, labels)

    @staticmethod
    def _labels(record: ExecutionRecord) -> dict[str, str]:
        return {"flow": record.flow, "placement": "peer" if peer_of(record.executor) else "local"}

    # -- alerts -------------------------------------------------------------------------------

    def alert_fired(self, rule: str, kind: str, severity: str) -> None:
        self.totals.alerts += 1
        self._alerts.add(1, {"rule": rule, "kind": kind, "severity": severity})

    def webhook_delivery(self, outcome: str) -> None:
        self._webhooks.add(1, {"outcome": outcome})

    # -- gauges -------------------------------------------------------------------------------

    def sample(self) -> Sample:
        """Take the gauge values (on the event loop)."""
        alive, warm = self.sources.pool()
        self.current = Sample(
            by_status=dict(self.sources.counts()),
            executors=alive,
            warm_executors=warm,
            watchers=self.sources.watchers(),
            heartbeat_lag=self.sources.heartbeat_lag(),
        )
        return self.current

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        # Every status not ended, 0 included: a backend keeps a gauge's last value, so a
        # status that is left out would seem to hold its last count forever.
        by_status = {s: 0 for s in ACTIVE} | self.current.by_status
        return [Observation(n, {"status": status_label(s)}) for s, n in by_status.items()]

    def _observe_queue(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(sum(self.current.by_status.get(s, 0) for s in _QUEUED))]

    def _observe_pool(self, options: CallbackOptions) -> Iterable[Observation]:
        current = self.current
        return [
            Observation(current.executors, {"state": "alive"}),
            Observation(current.warm_executors, {"state": "warm"}),
        ]

    def _observe_watchers(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.current.watchers)]

    def _observe_heartbeat(self, options: CallbackOptions) -> Iterable[Observation]:
        lag = self.current.heartbeat_lag
        return [] if lag is None else [Observation(lag)]

    def fill_load(self, load: node_pb2.NodeLoad) -> None:
        """Put the totals into a NodeLoad (GetNodeInfo, registry heartbeats)."""
        totals = self.totals
        load.executions_started = totals.started
        load.executions_finished = totals.finished
        load.executions_failed = totals.failed
        load.events_stored = totals.events
        load.alerts_fired = totals.alerts
