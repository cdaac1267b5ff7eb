"""Service statistics nodes report in their heartbeats: checked, then kept (in memory) until
the next report (docs/market.md, "Badges from measured service").

A node is not trusted: its figures are checked like any request (every field named in one
INVALID_ARGUMENT) — numbers finite and within bounds, successes + failures within runs, p50
not above p95, and only flows the node registered, each once. The registry keeps the latest
report of each node; nodes send one with every heartbeat, so a restarted registry has them
again within one heartbeat interval (no disk on the heartbeat's hot path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kodosumi.errors import FieldViolation, InvalidArgument

# Nothing a Ray node sustains: more ends per second of window is a made-up figure.
MAX_RUNS_PER_SECOND = 1000
# A run time (or a window) beyond a year is not a measurement.
MAX_SECONDS = 366 * 86_400.0
FIELD = "service_stats"


@dataclass(frozen=True, slots=True)
class FlowStats:
    """One flow's figures as the node reported them (mirrors `kodosumi.v1.FlowServiceStats`)."""

    flow: str
    runs: int
    successes: int
    failures: int
    p50_seconds: float
    p95_seconds: float

    @property
    def success_rate(self) -> float:
        """Successes among the runs that succeeded or failed (cancellations do not count)."""
        decided = self.successes + self.failures
        return self.successes / decided if decided else 0.0


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """A node's statistics over `window` seconds ending at `at` (the registry's clock)."""

    window: float
    flows: tuple[FlowStats, ...] = ()
    at: float = 0.0

    def flow(self, name: str) -> FlowStats | None:
        return next((f for f in self.flows if f.flow == name), None)


def check_report(report: ServiceReport, registered: frozenset[str], max_window: float) -> None:
    """Raise one InvalidArgument naming every bad field (`service_stats.flows[2].p95_seconds`)."""
    bad: list[FieldViolation] = []

    def flag(name: str, problem: str) -> None:
        bad.append(FieldViolation(f"{FIELD}.{name}", problem))

    if not math.isfinite(report.window) or not 0 < report.window <= max_window:
        flag("window", f"must be more than 0 s and at most {max_window:g} s")
    if len(report.flows) > len(registered):
        flag("flows", f"at most one entry per registered flow ({len(registered)})")
    most_runs = MAX_RUNS_PER_SECOND * max(report.window, 1.0) if math.isfinite(report.window) else 0
    seen: set[str] = set()
    for i, stats in enumerate(report.flows[: len(registered) + 1]):
        at = f"flows[{i}]"
        if stats.flow not in registered:
            flag(f"{at}.flow", f"{stats.flow!r} is not a flow this node registered")
        elif stats.flow in seen:
            flag(f"{at}.flow", f"{stats.flow!r} is reported twice")
        seen.add(stats.flow)
        if stats.runs > most_runs:
            flag(f"{at}.runs", f"more than {MAX_RUNS_PER_SECOND} runs per second of the window")
        if stats.successes + stats.failures > stats.runs:
            flag(f"{at}.successes", "successes + failures must not exceed runs")
        for name in ("p50_seconds", "p95_seconds"):
            value = getattr(stats, name)
            if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
                flag(f"{at}.{name}", f"a finite number of seconds from 0 to {MAX_SECONDS:g}")
        if (
            math.isfinite(stats.p50_seconds)
            and math.isfinite(stats.p95_seconds)
            and stats.p50_seconds > stats.p95_seconds
        ):
            flag(f"{at}.p50_seconds", "must not exceed p95_seconds")
        if stats.successes + stats.failures == 0 and (stats.p50_seconds or stats.p95_seconds):
            flag(f"{at}.p95_seconds", "run times need succeeded or failed runs")
    if bad:
        summary = "; ".join(f"{v.field}: {v.description}" for v in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise InvalidArgument(f"invalid service statistics: {summary}{more}", violations=bad)
