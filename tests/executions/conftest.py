"""The executions domain with no Ray and no gRPC: `ExecutionService` over the in-process
executor port (`kodosumid/executors/inprocess.py`) and a real SQLite event store in tmp_path.

Flows run in threads of the test process, as they do inside an executor actor; a crashed
executor is `InProcessExecutor.crash()`. Times come from a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kodosumi.authz import Principal
from kodosumi.clock import ManualClock
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry, NodeConfig
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.inprocess import InProcessExecutor, InProcessExecutorPool

REPO = Path(__file__).resolve().parents[2]
START = 1_800_000_000.0

FLOWS = (
    FlowEntry(
        "hello",
        "tests.flowlib:hello",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "additionalProperties": False,
        },
    ),
    FlowEntry("sleepy", "tests.flowlib:sleepy"),
    FlowEntry("sleepy-isolated", "tests.flowlib:sleepy", isolation="process"),
    FlowEntry(
        "sleepy-retried", "tests.flowlib:sleepy", retry_attempts=2, retry_backoff_seconds=0.05
    ),
    FlowEntry("asks", "tests.flowlib:asks"),
    FlowEntry("flaky", "tests.flowlib:flaky", retry_attempts=3, retry_backoff_seconds=0.05),
    FlowEntry("fails", "tests.flowlib:fails"),
    FlowEntry("forges-usage", "tests.flowlib:forges_usage"),
    FlowEntry("burns", "tests.flowlib:burns_in_a_thread"),
    FlowEntry("burns-isolated", "tests.flowlib:burns_in_a_thread", isolation="process"),
)


def user(name: str) -> Principal:
    return Principal(SpiffeId.parse(f"spiffe://d.test/user/{name}"), frozenset({"user"}))


ANN = user("ann")
BOB = user("bob")
OPERATOR = Principal(SpiffeId.parse("spiffe://d.test/user/olga"), frozenset({"operator"}))


@dataclass
class Domain:
    service: ExecutionService
    store: SqliteEventStore
    pool: InProcessExecutorPool
    clock: ManualClock

    async def launch(
        self, flow: str, inputs: dict[str, Any] | None = None, principal: Principal = ANN
    ) -> str:
        record = await self.service.launch(principal, flow, inputs or {})
        return record.execution_id

    async def events(
        self, execution_id: str, after_seq: int = 0, principal: Principal = ANN
    ) -> list[event_pb2.Event]:
        """The whole stream of a watch, until it ends."""
        received: list[event_pb2.Event] = []

        async def watch() -> None:
            async for batch in self.service.watch(principal, execution_id, after_seq):
                received.extend(event_pb2.Event.FromString(data) for data in batch)

        await asyncio.wait_for(watch(), 30)
        return received

    async def first(
        self, execution_id: str, matches: Callable[[event_pb2.Event], bool]
    ) -> event_pb2.Event:
        """The first event of the stream that `matches` (the watch stops there)."""

        async def watch() -> event_pb2.Event:
            async for batch in self.service.watch(ANN, execution_id, 0):
                for data in batch:
                    event = event_pb2.Event.FromString(data)
                    if matches(event):
                        return event
            raise AssertionError(f"the stream of {execution_id} ended without the event")

        return await asyncio.wait_for(watch(), 30)

    def executor_of(self, execution_id: str) -> InProcessExecutor:
        for executor in reversed(self.pool.created):
            if execution_id in executor.executions:
                return executor
        raise AssertionError(f"no executor hosts {execution_id}")


def statuses(events: list[event_pb2.Event]) -> list[int]:
    return [e.status_changed.status for e in events if e.HasField("status_changed")]


def status_is(*wanted: int) -> Callable[[event_pb2.Event], bool]:
    return lambda e: e.HasField("status_changed") and e.status_changed.status in wanted


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def domain(tmp_path: Path) -> AsyncIterator[Domain]:
    store = SqliteEventStore(tmp_path / "events.sqlite")
    await store.open()
    pool = InProcessExecutorPool()
    clock = ManualClock(START)
    config = NodeConfig(
        node_id="n1",
        state_dir=tmp_path,
        flows=FLOWS,
        python_path=(str(REPO),),
        cancel_grace_seconds=0.5,
    )
    service = ExecutionService(config, Catalog(FLOWS), store, WatchHub(), pool, clock=clock)
    await service.recover()
    yield Domain(service, store, pool, clock)
    await service.shutdown(0.5)
    await pool.close()
    await store.close()
