"""A launch's own placement survives a node restart (issue 12): a launch accepted but not
yet started when the node stopped is dispatched by the restarted node with the placement
it was launched with, not only its flow's."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from kodosumi.clock import ManualClock
from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import NodeConfig
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.recovery import launch_placement
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.inprocess import InProcessExecutorPool
from kodosumid.executors.placement import placement_json, stored_placement
from kodosumid.executors.port import ANYWHERE, ExecutorHandle, Placement
from tests.event_store.helpers import record
from tests.executions.conftest import FLOWS, OPERATOR, REPO, START, eventually

S = event_pb2
ON_H2 = Placement({"CPU": 0.5}, {"host": "h2"}, "")


class RecordingPool(InProcessExecutorPool):
    """In-process executors that note the placement of every acquire; `hold` keeps
    acquires waiting (a node that accepted launches and stopped before starting them)."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.placements: list[Placement] = []
        self._hold = asyncio.Event()
        if not hold:
            self._hold.set()

    async def acquire(self, isolation: str, placement: Placement = ANYWHERE) -> ExecutorHandle:
        self.placements.append(placement)
        await self._hold.wait()
        return await super().acquire(isolation, placement)


def _service(tmp_path: Path, store: SqliteEventStore, pool: RecordingPool) -> ExecutionService:
    config = NodeConfig(node_id="n1", state_dir=tmp_path, flows=FLOWS, python_path=(str(REPO),))
    return ExecutionService(
        config, Catalog(FLOWS), store, WatchHub(), pool, clock=ManualClock(START)
    )


async def test_a_restarted_node_dispatches_a_pending_launch_with_its_own_placement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.sqlite"
    first_store = SqliteEventStore(path)
    await first_store.open()
    stuck = RecordingPool(hold=True)
    first = _service(tmp_path, first_store, stuck)
    await first.recover()
    placed = await first.launch(OPERATOR, "hello", {"name": "h2"}, placement=ON_H2)
    plain = await first.launch(OPERATOR, "hello", {"name": "any"})

    async def both_waiting() -> bool:
        return len(stuck.placements) == 2

    await eventually(both_waiting)
    assert stuck.placements == [ON_H2, ANYWHERE]
    record = await first_store.get_execution(placed.execution_id)
    assert record is not None and stored_placement(record.placement) == ON_H2
    # The node stops abruptly: its tasks die with it, nothing more is written.
    first.live.cancel_tasks()
    await first_store.close()

    store = SqliteEventStore(path)
    await store.open()
    pool = RecordingPool()
    second = _service(tmp_path, store, pool)
    try:
        await second.recover()

        async def ended() -> bool:
            records = [await store.get_execution(r.execution_id) for r in (placed, plain)]
            return all(r is not None and r.terminal for r in records)

        await eventually(ended)
        assert sorted(pool.placements, key=lambda p: p.anywhere) == [ON_H2, ANYWHERE]
        for launched in (placed, plain):
            got = await store.get_execution(launched.execution_id)
            assert got is not None and got.status == S.EXECUTION_STATUS_SUCCEEDED
        # Executors of different placements: the placed one ran on an executor made for it.
        assert sorted(e.placement.key for e in pool.created) == sorted((ON_H2.key, ANYWHERE.key))
    finally:
        await second.shutdown(0.5)
        await pool.close()
        await store.close()


def test_a_stored_placement_round_trips_and_a_damaged_one_is_named() -> None:
    assert placement_json(ANYWHERE) == ""
    assert stored_placement(placement_json(ON_H2)) == ON_H2
    assert stored_placement("") == ANYWHERE
    for damaged in ("{", "[]", '{"resources": {"GPU": -1}}'):
        with pytest.raises(InvalidArgument):
            stored_placement(damaged)
    # Recovery keeps the execution going with its flow's placement, never crashes on it.
    assert launch_placement(replace(record("x"), placement='{"labels": 5}')) == ANYWHERE
