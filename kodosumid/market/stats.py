"""How this node has served a flow lately, measured from its own event store: the last
`WINDOW` finished runs (SUCCEEDED, FAILED, TIMED_OUT; a cancelled run says nothing about
the service), their success rate, and the p50/p95 run time (started to ended) of the
successful ones. Cached per flow for `CACHE_SECONDS`, so a stream of quote requests costs
one bounded read per flow and period, not one each; a run of the flow that ends drops its
entry (the stats are an execution observer), so a quote always counts the runs that ended.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kodosumi.clock import Clock
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from kodosumid.event_store import EventStore, ExecutionRecord, StatusChange
from kodosumid.market.claims import Stats

WINDOW = 200
CACHE_SECONDS = 10.0
# The listing page is bounded in bytes too (runs' inputs can be large).
PAGE_BYTES = 512 * 1024
_COUNTED = (
    event_pb2.EXECUTION_STATUS_SUCCEEDED,
    event_pb2.EXECUTION_STATUS_FAILED,
    event_pb2.EXECUTION_STATUS_TIMED_OUT,
)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class ServiceStats:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[float, Stats]] = {}

    def launched(self, record: ExecutionRecord) -> None:
        pass

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        if any(c.status in TERMINAL for c in changes):
            self._cache.pop(record.flow, None)

    async def of(self, flow: str) -> Stats:
        now = self.clock.now()
        cached = self._cache.get(flow)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        page = await self.store.list_executions(
            owner=None, statuses=_COUNTED, flow=flow, page_size=WINDOW, max_bytes=PAGE_BYTES
        )
        runs = page.executions
        succeeded = [r for r in runs if r.status == event_pb2.EXECUTION_STATUS_SUCCEEDED]
        durations = sorted(
            (r.end_ns - r.start_ns) / 1e9 for r in succeeded if r.start_ns and r.end_ns
        )
        stats = Stats(
            runs=len(runs),
            success_rate=round(len(succeeded) / len(runs), 4) if runs else 0.0,
            p50_seconds=round(percentile(durations, 0.5), 3),
            p95_seconds=round(percentile(durations, 0.95), 3),
        )
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[flow] = (now, stats)
        return stats
