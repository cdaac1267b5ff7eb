"""Requests that meet an execution mid-dispatch: a cancel while its start is on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kodosumi.clock import ManualClock
from kodosumi.errors import FailedPrecondition
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import NodeConfig
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.inprocess import InProcessExecutor, InProcessExecutorPool
from kodosumid.executors.port import Placement
from tests.executions.conftest import ANN, FLOWS, REPO, START, Domain, statuses

S = event_pb2


class GatedExecutor(InProcessExecutor):
    """Its `start` waits for the test: a start call still on its way to the executor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def start(self, spec: Mapping[str, Any]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().start(spec)


class GatedPool(InProcessExecutorPool):
    def __init__(self) -> None:
        super().__init__()
        self.made = asyncio.Event()
        # Open: starts go through at once.
        self.open = False

    def _new(self, isolation: str, placement: Placement) -> InProcessExecutor:
        executor = GatedExecutor(f"gated-{len(self.created) + 1}", isolation, placement=placement)
        if self.open:
            executor.gate.set()
        self.created.append(executor)
        self.made.set()
        return executor


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[Domain]:
    store = SqliteEventStore(tmp_path / "events.sqlite")
    await store.open()
    pool = GatedPool()
    config = NodeConfig(node_id="n1", state_dir=tmp_path, flows=FLOWS, python_path=(str(REPO),))
    clock = ManualClock(START)
    service = ExecutionService(config, Catalog(FLOWS), store, WatchHub(), pool, clock=clock)
    yield Domain(service, store, pool, clock)
    for executor in pool.created:
        assert isinstance(executor, GatedExecutor)
        executor.gate.set()
    await service.shutdown(0.5)
    await pool.close()
    await store.close()


async def test_a_cancel_while_the_start_is_on_its_way_is_not_lost(gated: Domain) -> None:
    execution_id = await gated.launch("sleepy", {"seconds": 30})
    assert isinstance(gated.pool, GatedPool)
    await asyncio.wait_for(gated.pool.made.wait(), 10)
    executor = gated.pool.created[0]
    assert isinstance(executor, GatedExecutor)
    await asyncio.wait_for(executor.entered.wait(), 10)
    # The executor does not know the execution yet: the cancel must neither fail nor vanish.
    record = await gated.service.cancel(ANN, execution_id, "before it started")
    assert record.execution_id == execution_id
    with pytest.raises(FailedPrecondition):
        await gated.service.provide_input(ANN, execution_id, "r", 1)
    executor.gate.set()
    events = await gated.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert events[-1].status_changed.reason == "before it started"


async def test_a_cancel_right_after_the_launch_ends_it_whatever_the_dispatch_reached(
    gated: Domain,
) -> None:
    assert isinstance(gated.pool, GatedPool)
    gated.pool.open = True
    for _ in range(5):
        execution_id = await gated.launch("sleepy", {"seconds": 30})
        await gated.service.cancel(ANN, execution_id, "at once")
        events = await gated.events(execution_id)
        assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
        assert events[-1].status_changed.reason == "at once"
