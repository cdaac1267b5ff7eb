"""The node's log of runs: one INFO line when an execution is launched (here or relayed to a
peer) and one when it ends, each naming the execution and its trace, so that an operator
goes from the node's log to the run's events and to its trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from kodosumi.statuses import status_word
from kodosumid.event_store import TERMINAL, ExecutionRecord, StatusChange
from kodosumid.executions.relay import peer_of

log = logging.getLogger("kodosumid.runs")


class RunLog:
    """An `ExecutionObserver` (executions/lifecycle.py) that logs launches and ends."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock

    def launched(self, record: ExecutionRecord) -> None:
        peer = peer_of(record.executor)
        log.info(
            "launched %s as %s for %s%s",
            record.flow,
            record.execution_id,
            record.owner,
            f" (relayed to {peer})" if peer else "",
            extra=_ids(record),
        )

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        for change in changes:
            if change.status not in TERMINAL:
                continue
            seconds = max(0.0, (self.clock() - record.create_ns) / 1e9)
            log.info(
                "execution %s of %s ended %s after %.1f s%s",
                record.execution_id,
                record.flow,
                status_word(change.status),
                seconds,
                f": {change.reason[:300]}" if change.reason else "",
                extra={**_ids(record), "status": status_word(change.status)},
            )


def _ids(record: ExecutionRecord) -> dict[str, str]:
    return {"execution_id": record.execution_id, "trace_id": record.trace_id, "flow": record.flow}
