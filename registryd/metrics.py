"""The registry's metrics: nodes by state, and how late each online node's heartbeat is.

Counted from the registry's own view (stored nodes with their in-memory leases), refreshed
on the event loop every `interval` seconds; the gauges report the last refresh, since the
metric reader calls them from its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from registryd.clock import Clock
from registryd.model import ALL_NODES, NodeQuery, NodeRecord, NodeState
from registryd.registry import Registry

log = logging.getLogger(__name__)


class RegistryMetrics:
    def __init__(
        self, meter: metrics.Meter, registry: Registry, clock: Clock, interval: float = 5.0
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.interval = interval
        self.by_state: dict[str, int] = {state.value: 0 for state in NodeState}
        # Seconds each online node's heartbeat is overdue (0: on time).
        self.lag: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        # Observable instruments cannot be removed from a meter; a closed registry's callbacks
        # stay registered (several registries in one process share the meter), so they must
        # go quiet instead of reporting stale counts under the same attributes.
        self._closed = False
        meter.create_observable_gauge(
            "kodosumi.registry.nodes",
            [self._observe_nodes],
            unit="{node}",
            description="Registered nodes by state (online, offline, left)",
        )
        meter.create_observable_gauge(
            "kodosumi.registry.node_heartbeat_lag",
            [self._observe_lag],
            unit="s",
            description="How far each online node's heartbeat is overdue",
        )

    async def refresh(self) -> None:
        nodes: list[NodeRecord] = []
        after = ""
        while True:
            page = await self.registry.list_nodes(
                NodeQuery(after_node_id=after) if after else ALL_NODES, page_size=1000
            )
            nodes += page.nodes
            if not page.next_after:
                break
            after = page.next_after
        now = self.clock.now()
        by_state = {state.value: 0 for state in NodeState}
        lag = {}
        for node in nodes:
            by_state[node.state.value] = by_state.get(node.state.value, 0) + 1
            if node.state is NodeState.ONLINE:
                overdue = now - node.last_heartbeat_at - node.heartbeat_interval
                lag[node.node_id] = max(0.0, overdue)
        self.by_state, self.lag = by_state, lag

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="registry-metrics")

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("registry metrics refresh failed")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _observe_nodes(self, options: CallbackOptions) -> Iterable[Observation]:
        return self.observe_nodes()

    def observe_nodes(self) -> list[Observation]:
        """The gauge's observations: nodes by state (none once the registry is closed)."""
        if self._closed:
            return []
        return [Observation(n, {"state": state}) for state, n in self.by_state.items()]

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._closed:
            return []
        return [Observation(seconds, {"node_id": node}) for node, seconds in self.lag.items()]
