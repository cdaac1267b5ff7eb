"""The node's service statistics, sent with its registry heartbeats (docs/market.md, "Badges
from measured service"): per flow it offers, the runs that ended within a window, how many
succeeded and failed, and the median and 95th percentile of their run time.

The figures come from the event store (the executions' ends), so a restarted node reports
what it served before. The work is bounded whatever the node's traffic: one read of at most
`max_runs` of the newest ends, at most once per `refresh_seconds` — heartbeats in between
send the cached report. Flows the node does not offer are left out (the registry refuses
figures for flows a node did not register).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf import duration_pb2

from kodosumi.v1 import event_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.event_store.model import EndedRun

# The window when the registry names none (an older registry): one day.
DEFAULT_WINDOW_SECONDS = 86_400.0
MAX_RUNS = 10_000
_SUCCEEDED = event_pb2.EXECUTION_STATUS_SUCCEEDED
_FAILED = frozenset({event_pb2.EXECUTION_STATUS_FAILED, event_pb2.EXECUTION_STATUS_TIMED_OUT})


class EndedRuns(Protocol):
    async def ended_since(self, since_ns: int, limit: int) -> list[EndedRun]: ...


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (`q` in (0, 1]) of ascending values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(slots=True)
class _Tally:
    runs: int = 0
    successes: int = 0
    failures: int = 0
    durations: list[float] = field(default_factory=list)


def summarize(runs: Iterable[EndedRun], offered: set[str]) -> list[rpb.FlowServiceStats]:
    """Per offered flow (by name), its ends counted and its run times' p50/p95."""
    tallies: dict[str, _Tally] = {}
    for run in runs:
        if run.flow not in offered:
            continue
        tally = tallies.setdefault(run.flow, _Tally())
        tally.runs += 1
        ok = run.status == _SUCCEEDED
        failed = run.status in _FAILED
        tally.successes += ok
        tally.failures += failed
        # Cancellations say nothing of the flow's speed; runs that never started have no time.
        if (ok or failed) and 0 < run.start_ns <= run.end_ns:
            tally.durations.append((run.end_ns - run.start_ns) / 1e9)
    stats = []
    for name in sorted(tallies):
        tally = tallies[name]
        tally.durations.sort()
        stats.append(
            rpb.FlowServiceStats(
                flow=name,
                runs=tally.runs,
                successes=tally.successes,
                failures=tally.failures,
                p50_seconds=round(percentile(tally.durations, 0.50), 3),
                p95_seconds=round(percentile(tally.durations, 0.95), 3),
            )
        )
    return stats


class ServiceStatsMeter:
    """Reports per-flow statistics over a window, from the event store, cached."""

    def __init__(
        self,
        store: EndedRuns,
        offered: Callable[[], Iterable[str]],
        *,
        refresh_seconds: float = 30.0,
        max_runs: int = MAX_RUNS,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.offered = offered
        self.refresh_seconds = refresh_seconds
        self.max_runs = max_runs
        self.now = now
        self.reads = 0
        self._cached: rpb.ServiceStats | None = None
        self._cached_at = -math.inf
        self._cached_window = 0.0

    async def report(self, window: float | None) -> rpb.ServiceStats:
        """The statistics over the last `window` seconds (None: the default window)."""
        window = window if window and window > 0 else DEFAULT_WINDOW_SECONDS
        now = self.now()
        cached = self._cached
        if (
            cached is not None
            and window == self._cached_window
            and now - self._cached_at < self.refresh_seconds
        ):
            return cached
        since_ns = int((now - window) * 1e9)
        runs = await self.store.ended_since(since_ns, self.max_runs)
        self.reads += 1
        span = duration_pb2.Duration()
        span.FromNanoseconds(round(window * 1e9))
        report = rpb.ServiceStats(window=span, flows=summarize(runs, set(self.offered())))
        self._cached, self._cached_at, self._cached_window = report, now, window
        return report
