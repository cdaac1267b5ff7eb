"""Everything a node does so that operators can see it: telemetry export, metrics, alert
rules, the operator stream and webhooks, wired together for `NodeApp`.

    ExecutionService ──stored/launched──► Observers ─┬─► NodeMetrics ──► OpenTelemetry
                                                     └─► AlertEngine ─┐
    every evaluate_interval: sample gauges, evaluate conditions ──────┤ raise_alert
                                                                      ▼
                          AlertLog (alerts.sqlite, WatchAlerts) ──► WebhookSender(s)

`NodeApp` calls `start_telemetry()` before it builds its server and channels (so they are
traced), `start()` once the manager, pool and network exist, and `close()` last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from kodosumi.telemetry import Telemetry
from kodosumi.v1 import event_pb2, node_pb2
from kodosumid.config import NodeConfig
from kodosumid.executions.lifecycle import Observers
from kodosumid.executors.ray_actor import NODE_ENV
from kodosumid.observability.alert_log import AlertLog
from kodosumid.observability.alerts import AlertEngine, NetworkView, PeerState
from kodosumid.observability.metrics import NodeMetrics, Sources
from kodosumid.observability.rules import SEVERITIES
from kodosumid.observability.run_log import RunLog
from kodosumid.observability.usage_metrics import UsageMetrics
from kodosumid.observability.webhooks import WebhookSender

log = logging.getLogger(__name__)

SERVICE_NAME = "kodosumid"
ALERTS_FILE = "alerts.sqlite"
_SEVERITY_NAMES = {value: name for name, value in SEVERITIES.items()}


class HeartbeatWatch:
    """How far the registry heartbeat is overdue, from the registration loop's counters.

    Lag = time since the last successful heartbeat or registration, minus the interval the
    registry granted (0 while on time). Sampled, so its resolution is the sampling period.
    """

    def __init__(self, registration: Callable[[], Any], clock: Callable[[], float]) -> None:
        self.registration = registration
        self.clock = clock
        self._beats = -1
        self._last = clock()

    def lag(self) -> float | None:
        registration = self.registration()
        if registration is None:
            return None
        now = self.clock()
        beats = int(registration.heartbeats) + int(registration.registrations)
        if beats != self._beats:
            self._beats, self._last = beats, now
        return max(0.0, now - self._last - float(registration.interval))


class NodeObservability:
    def __init__(self, config: NodeConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.telemetry: Telemetry | None = None
        self.metrics: NodeMetrics | None = None
        self.engine: AlertEngine | None = None
        self.log = AlertLog(config.state_dir / ALERTS_FILE, keep=config.alerts.keep)
        self.webhooks: list[WebhookSender] = []
        # What ExecutionService reports to: the log of runs now; metrics and alert rules
        # join in start_telemetry().
        self.observer = Observers(RunLog())
        self._raised: asyncio.Queue[event_pb2.Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._heartbeat: HeartbeatWatch | None = None

    # -- set-up -------------------------------------------------------------------------------

    def start_telemetry(self) -> None:
        """Install export (before servers and channels exist) and create the instruments."""
        config = self.config
        self.telemetry = Telemetry.install(
            config.telemetry,
            SERVICE_NAME,
            attributes={"service.instance.id": config.node_id, "kodosumi.node_id": config.node_id},
        )
        meter = self.telemetry.meter("kodosumid", {"kodosumi.node_id": config.node_id})
        self.metrics = NodeMetrics(meter)
        self.observer.add(self.metrics)
        self.observer.add(UsageMetrics(meter))

    def executor_env(self) -> dict[str, str]:
        """What executors need to export like the node: its `[telemetry]` and the OTEL_*
        variables of its environment (a cluster's workers do not inherit them)."""
        env = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
        env.update(self.config.telemetry.to_env())
        env[NODE_ENV] = self.config.node_id
        return env

    async def start(
        self,
        *,
        counts: Callable[[], dict[int, int]],
        pool: Callable[[], tuple[int, int]],
        watchers: Callable[[], int],
        network: Any = None,
    ) -> None:
        """Open the operator stream and start sampling, evaluating and delivering.

        `network` is the node's `PeerNetwork` (or None): peers for `node_offline`, the
        registration loop for `heartbeat_lag`.
        """
        assert self.metrics is not None, "start_telemetry() first"
        await self.log.open()
        self._heartbeat = HeartbeatWatch(lambda: getattr(network, "registration", None), self.clock)
        self.metrics.sources = Sources(counts, pool, watchers, self._heartbeat.lag)
        self.engine = AlertEngine(
            self.config.alerts,
            self.config.node_id,
            self._raised.put_nowait,
            network=NetworkView(peers=lambda: _peer_states(network), heartbeat_lag=self._lag),
            clock=self.clock,
        )
        self.observer.add(self.engine)
        queue_size, outcome = self.config.alerts.webhook_queue, self.metrics.webhook_delivery
        self.webhooks = [
            WebhookSender(hook, queue_size=queue_size, on_outcome=outcome)
            for hook in self.config.alerts.webhooks
        ]
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publish_alerts(), name="alerts"),
            loop.create_task(self._tick(), name="observability-tick"),
            *(loop.create_task(w.run(), name=f"webhook-{w.hook.url}") for w in self.webhooks),
        ]

    def _lag(self) -> float | None:
        return self.metrics.current.heartbeat_lag if self.metrics is not None else None

    async def _tick(self) -> None:
        """Sample the gauges and check the alert conditions, on the event loop."""
        interval = min(self.config.alerts.evaluate_interval_seconds, 1.0)
        evaluate_every = self.config.alerts.evaluate_interval_seconds
        last_evaluation = self.clock()
        while True:
            await asyncio.sleep(interval)
            try:
                assert self.metrics is not None and self.engine is not None
                self.metrics.sample()
                if self.clock() - last_evaluation >= evaluate_every:
                    last_evaluation = self.clock()
                    self.engine.evaluate()
            except Exception:
                log.exception("observability tick failed")

    async def _publish_alerts(self) -> None:
        """Store each raised alert on the operator stream, then count it and send it."""
        while True:
            event = await self._raised.get()
            try:
                await self._publish(event)
            except Exception:
                log.exception("could not store alert %s", event.alert.rule)
            finally:
                self._raised.task_done()

    async def _publish(self, event: event_pb2.Event) -> None:
        stored = await self.log.append(event)
        alert = stored.alert
        if self.metrics is not None and not alert.resolved:
            self.metrics.alert_fired(
                alert.rule, alert.kind, _SEVERITY_NAMES.get(alert.severity, "info")
            )
        log.log(
            logging.INFO if alert.resolved else logging.WARNING,
            "alert %s%s: %s",
            alert.rule,
            " (resolved)" if alert.resolved else "",
            alert.message,
            extra={"execution_id": stored.execution_id, "trace_id": stored.trace_id},
        )
        for sender in self.webhooks:
            sender.offer(stored)

    # -- reads --------------------------------------------------------------------------------

    def fill_load(self, load: node_pb2.NodeLoad) -> None:
        if self.metrics is not None:
            self.metrics.fill_load(load)

    def watch_alerts(self, after_seq: int, follow: bool) -> AsyncIterator[bytes]:
        """`WatchAlertsResponse` bytes (kodosumid/observability/alert_log.py)."""
        return self.log.responses(after_seq, follow)

    async def evaluate_now(self) -> None:
        """Sample and evaluate at once (tests, and a node about to report)."""
        if self.metrics is not None:
            self.metrics.sample()
        if self.engine is not None:
            self.engine.evaluate()

    # -- teardown -----------------------------------------------------------------------------

    async def close(self) -> None:
        if self._tasks:
            # Alerts raised while stopping (executions ended by the shutdown) are stored first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._raised.join(), 2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        await self.log.close()
        if self.telemetry is not None:
            # Exporting may wait for a slow collector: not on the event loop.
            await asyncio.to_thread(self.telemetry.close)


def _peer_states(network: Any) -> list[PeerState]:
    """Peers as the `node_offline` rule sees them: OFFLINE in the registry, or failing this
    node's health checks. Peers that left on purpose are not offline."""
    table = getattr(network, "table", None)
    if table is None:
        return []
    states = []
    for peer in table.entries():
        registry_state = str(getattr(peer, "registry_state", ""))
        liveness = str(getattr(peer, "liveness", ""))
        if registry_state == "LEFT":
            continue
        offline = registry_state == "OFFLINE" or liveness == "dead"
        reason = getattr(peer, "liveness_reason", "") if liveness == "dead" else ""
        if registry_state == "OFFLINE":
            reason = "the registry lists it OFFLINE" + (f"; {reason}" if reason else "")
        states.append(PeerState(peer.node_id, offline, reason))
    return states
