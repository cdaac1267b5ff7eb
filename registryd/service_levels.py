"""Service levels: what each flow on each node showed over the badge window, and the best
configured level it meets (docs/market.md, "Badges from measured service").

A measure joins the node's latest report (runs, successes, failures, p50/p95 run time) with
the node's availability as the registry saw it: the share of the window its lease held,
from the change log's ONLINE/OFFLINE/LEFT changes on the registry's clock. `evaluate` reads
the log once for all nodes; the auth provider turns the levels into badges
(registryd/auth/service_badges.py) and the market view shows them (registryd/market.py).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from registryd.config import BadgeLevel, BadgesConfig
from registryd.model import ChangeKind, FlowOffer, NodePage, NodeRecord, NodeState
from registryd.service_stats import FlowStats, ServiceReport
from registryd.store import RegistryStore

_CHANGES_PER_READ = 1000
_STATE_OF_CHANGE = {
    ChangeKind.NODE_ONLINE: NodeState.ONLINE,
    ChangeKind.NODE_OFFLINE: NodeState.OFFLINE,
    ChangeKind.NODE_LEFT: NodeState.LEFT,
}
_NODES_PER_READ = 100


@dataclass(frozen=True, slots=True)
class ServiceMeasure:
    """One flow on one node over the window: the claims of its service-level badge."""

    node_id: str
    flow: str
    window_seconds: float
    runs: int
    successes: int
    failures: int
    success_rate: float
    p50_seconds: float
    p95_seconds: float
    availability: float
    heartbeat_interval_seconds: float
    reported_at: float

    def facts(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "flow": self.flow,
            "window_seconds": self.window_seconds,
            "runs": self.runs,
            "successes": self.successes,
            "failures": self.failures,
            "success_rate": round(self.success_rate, 6),
            "p50_seconds": self.p50_seconds,
            "p95_seconds": self.p95_seconds,
            "availability": round(self.availability, 6),
            "heartbeat_interval_seconds": self.heartbeat_interval_seconds,
            "reported_at": int(self.reported_at),
        }


def shortfalls(measure: ServiceMeasure, level: BadgeLevel) -> list[str]:
    """Why `measure` does not meet `level` (empty: it does)."""
    short = []
    if measure.runs < level.min_runs:
        short.append(f"runs {measure.runs} < {level.min_runs}")
    if measure.success_rate < level.success_rate:
        short.append(f"success_rate {measure.success_rate:.4g} < {level.success_rate:g}")
    if level.p95_seconds is not None and measure.p95_seconds > level.p95_seconds:
        short.append(f"p95 {measure.p95_seconds:g} s > {level.p95_seconds:g} s")
    if measure.availability < level.availability:
        short.append(f"availability {measure.availability:.4g} < {level.availability:g}")
    return short


def earned_level(measure: ServiceMeasure, levels: dict[str, BadgeLevel]) -> str:
    """The first (best) level `measure` meets; "" for none."""
    return next((name for name, level in levels.items() if not shortfalls(measure, level)), "")


def level_rank(levels: dict[str, BadgeLevel], name: str) -> int:
    """0 for the best level; len(levels) for none."""
    return list(levels).index(name) if name in levels else len(levels)


def online_seconds(
    transitions: list[tuple[float, NodeState]], node: NodeRecord, start: float, now: float
) -> float:
    """Seconds of [start, now] the node was ONLINE, from its retained state changes (in order).

    Before its oldest retained change the node was in the state that change left (a change to
    ONLINE follows a time not online, any other a time online); with none retained (compacted
    away) its current state began when it changed to it. Never online before it registered.
    """
    if not transitions:
        transitions = [(node.state_changed_at, node.state)]
    first = transitions[0][1]
    state = NodeState.OFFLINE if first is NodeState.ONLINE else NodeState.ONLINE
    low = max(start, node.first_registered_at)
    online, since = 0.0, -math.inf
    for at, next_state in [*transitions, (now, state)]:
        if state is NodeState.ONLINE:
            online += max(0.0, min(at, now) - max(since, low))
        since, state = at, next_state
    return min(online, max(0.0, now - start))


async def _transitions(
    store: RegistryStore, wanted: set[str]
) -> dict[str, list[tuple[float, NodeState]]]:
    """The retained state changes of the `wanted` nodes, in order: one pass over the log."""
    transitions: dict[str, list[tuple[float, NodeState]]] = {n: [] for n in wanted}
    after = await store.compacted_revision()
    while changes := await store.changes_after(after, _CHANGES_PER_READ):
        after = changes[-1].revision
        for change in changes:
            if change.node_id in wanted and change.kind in _STATE_OF_CHANGE:
                transitions[change.node_id].append((change.at, _STATE_OF_CHANGE[change.kind]))
    return transitions


async def state_changes(store: RegistryStore, node_id: str, since: float) -> int:
    """How many times the node changed state (ONLINE, OFFLINE, LEFT) after `since`."""
    found = (await _transitions(store, {node_id}))[node_id]
    return sum(1 for at, _ in found if at > since)


async def availabilities(
    store: RegistryStore, nodes: list[NodeRecord], window: float, now: float
) -> dict[str, float]:
    """Each node's share of the window ONLINE: one pass over the retained change log."""
    if window <= 0:
        return {n.node_id: 0.0 for n in nodes}
    transitions = await _transitions(store, {n.node_id for n in nodes})
    start = now - window
    return {
        n.node_id: online_seconds(transitions[n.node_id], n, start, now) / window for n in nodes
    }


def measure(
    node: NodeRecord, stats: FlowStats, report: ServiceReport, availability: float
) -> ServiceMeasure:
    return ServiceMeasure(
        node_id=node.node_id,
        flow=stats.flow,
        window_seconds=report.window,
        runs=stats.runs,
        successes=stats.successes,
        failures=stats.failures,
        success_rate=stats.success_rate,
        p50_seconds=stats.p50_seconds,
        p95_seconds=stats.p95_seconds,
        availability=availability,
        heartbeat_interval_seconds=node.heartbeat_interval,
        reported_at=report.at,
    )


@dataclass(slots=True)
class ServiceBook:
    """Reports, measures and held badge levels, by node and flow (in memory: nodes report
    with every heartbeat, badges are reloaded from the auth store on start)."""

    reports: dict[str, ServiceReport] = field(default_factory=dict)
    measures: dict[tuple[str, str], ServiceMeasure] = field(default_factory=dict)
    # (node id, flow) -> (level, badge id) of the service-level badge it holds now.
    badges: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def record(self, node_id: str, report: ServiceReport) -> None:
        self.reports[node_id] = report

    def level_of(self, node_id: str, flow: str) -> tuple[str, str]:
        return self.badges.get((node_id, flow), ("", ""))

    def describe(self, offer: FlowOffer) -> FlowOffer:
        """The offer with its measured service and the badge level it holds."""
        key = (offer.node.node_id, offer.flow.name)
        level, badge_id = self.level_of(*key)
        return replace(offer, service=self.measures.get(key), badge_level=level, badge_id=badge_id)


class ServiceLevels:
    """Measures every reported flow over the configured window (`evaluate`)."""

    def __init__(self, store: RegistryStore, config: BadgesConfig, book: ServiceBook) -> None:
        self.store = store
        self.config = config
        self.book = book

    async def measure_all(
        self, pages: Callable[[str], Awaitable[NodePage]], now: float
    ) -> dict[tuple[str, str], str]:
        """Measure the nodes of every page (`pages(after_node_id)`), keep the measures for the
        market view; returns the level each (node, flow) earns."""
        measures: dict[tuple[str, str], ServiceMeasure] = {}
        earned: dict[tuple[str, str], str] = {}
        after = ""
        while True:
            page = await pages(after)
            found, levels = await self.evaluate(page.nodes, now)
            measures.update(found)
            earned.update(levels)
            if not page.next_after:
                break
            after = page.next_after
        self.book.measures = measures
        return earned

    async def evaluate(
        self, nodes: list[NodeRecord], now: float
    ) -> tuple[dict[tuple[str, str], ServiceMeasure], dict[tuple[str, str], str]]:
        """Measure the flows of `nodes` (their live records) that have a report younger than
        the window; returns the measures and the level each earns ("" for none)."""
        window = self.config.window
        reported = [n for n in nodes if n.node_id in self.book.reports]
        shares = await availabilities(self.store, reported, window, now)
        measures: dict[tuple[str, str], ServiceMeasure] = {}
        for node in reported:
            report = self.book.reports[node.node_id]
            if now - report.at > window:
                continue  # nothing measured within the window
            offered = {f.name for f in node.flows}
            for stats in report.flows:
                if stats.flow in offered:
                    measures[(node.node_id, stats.flow)] = measure(
                        node, stats, report, shares[node.node_id]
                    )
        return measures, {key: earned_level(m, self.config.levels) for key, m in measures.items()}
