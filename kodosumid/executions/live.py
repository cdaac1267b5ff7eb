"""The executions this node runs or relays right now, and the tasks working for them.

A `LiveExecution` exists from launch (or recovery) until the terminal status is stored; its
`stored_seq` is the last `seq` in the store, which every writer continues from. The
`LiveTable` is the one place the rooms of `kodosumid/executions/` share that state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from kodosumi.authz import Principal
from kodosumid.config import FlowEntry
from kodosumid.event_store import ExecutionRecord
from kodosumid.executors.port import ANYWHERE, ExecutorHandle, Placement

# The node acting on its own behalf (shutdown cancels every execution as it).
NODE_ITSELF = Principal(None, frozenset({"admin"}))


@dataclass(eq=False)
class LiveExecution:
    record: ExecutionRecord
    flow: FlowEntry
    stored_seq: int
    status: int
    executor: ExecutorHandle | None = None
    # The current attempt's start reached its executor (cancel and input may go there).
    started: bool = False
    # The peer node that runs it, for an execution relayed from there.
    peer: str = ""
    # W3C context of the launch: the parent of every attempt's execution span.
    traceparent: str = ""
    cancel_requested: bool = False
    cancel_reason: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Set on cancel: wakes a pause between attempts.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    # A launch's own placement over the flow's (kodosumid/executors/placement.py).
    placement: Placement = ANYWHERE
    # Bytes of its events in the store, counted against `[peers] max_execution_bytes` for a
    # local run (None: not counted yet; counted from the store on its first drained batch,
    # so a node restarted mid-run counts what it stored before).
    stored_bytes: int | None = None
    # The owner's groups at launch (usage summaries by group), and the attempts whose usage
    # is stored (an attempt the node ends itself gets a record unless it has one).
    groups: tuple[str, ...] = ()
    metered: set[int] = field(default_factory=set)

    @property
    def execution_id(self) -> str:
        return self.record.execution_id

    @property
    def attempt(self) -> int:
        return self.record.attempt

    @property
    def attempts_left(self) -> bool:
        return self.record.attempt < self.flow.retry_attempts


class LiveTable:
    """Live executions by id, and the background tasks (dispatch, relay, retry) of them."""

    def __init__(self) -> None:
        self._by_id: dict[str, LiveExecution] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        # Set at shutdown: no new launches.
        self.closing = False

    def add(self, live: LiveExecution) -> None:
        self._by_id[live.execution_id] = live

    def get(self, execution_id: str) -> LiveExecution | None:
        return self._by_id.get(execution_id)

    def pop(self, execution_id: str) -> LiveExecution | None:
        return self._by_id.pop(execution_id, None)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def values(self) -> list[LiveExecution]:
        return list(self._by_id.values())

    def counts(self) -> dict[int, int]:
        """Live executions per status."""
        result: dict[int, int] = {}
        for live in self._by_id.values():
            result[live.status] = result.get(live.status, 0) + 1
        return result

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background; `cancel_tasks` stops whatever is still running."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
