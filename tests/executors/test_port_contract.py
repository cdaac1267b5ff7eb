"""One contract for every executor port: the same tests run against the in-process pool
(`kodosumid/executors/inprocess.py`) and the Ray pool (`ray_pool.py`, on the session's real
local Ray). An abstract class says what must hold; one tiny subclass per implementation
says how to make a pool and how its executor's process dies.

What the executions domain relies on: a start runs the flow once (a retried start too); a
drain long-polls, hands out events in `seq` order from 1 without gaps, with their status
changes, again and again until acknowledged; cancel and input answers reach the flow; the
engine's own errors reach the caller as themselves; and a dead executor answers every call
with `ExecutorGone`, one line naming it, also a drain already waiting when it died.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.spec import ExecutionSpec
from kodosumi.errors import FailedPrecondition, KodosumiError, NotFound
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from kodosumid.config import PoolConfig
from kodosumid.executors.inprocess import InProcessExecutor, InProcessExecutorPool
from kodosumid.executors.port import PROCESS, SHARED, ExecutorGone, ExecutorHandle, ExecutorPool

S = event_pb2
REPO = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


def spec(entrypoint: str, inputs: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    name = entrypoint.rsplit(":", 1)[1]
    return ExecutionSpec(
        execution_id=f"port-{name}-{next(_ids)}",
        flow=name,
        entrypoint=entrypoint,
        inputs=inputs or {},
        python_path=(str(REPO),),
        cancel_grace_seconds=1.0,
        **more,
    ).to_dict()


class Drained:
    """Everything drained of one execution so far, acknowledged as it arrives."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.events: list[event_pb2.Event] = []
        self.statuses: list[tuple[int, int, str]] = []

    @property
    def acked(self) -> int:
        return self.events[-1].seq if self.events else 0

    @property
    def status_values(self) -> list[int]:
        return [status for _, status, _ in self.statuses]

    @property
    def ended(self) -> bool:
        return any(status in TERMINAL for status in self.status_values)

    async def until(
        self,
        executor: ExecutorHandle,
        done: Callable[[Drained], bool],
        timeout: float = 60.0,
    ) -> Drained:
        """Drain (acknowledging what arrived) until `done` holds."""
        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout:g} s: {self.status_values}")
            events, statuses = await executor.drain({self.execution_id: self.acked}, 1000, 0.5)
            self.events += [S.Event.FromString(data) for data in events.get(self.execution_id, [])]
            self.statuses += statuses.get(self.execution_id, [])
        return self


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout:g} s")
        await asyncio.sleep(0.05)


async def is_gone(call: Awaitable[Any]) -> bool:
    try:
        await call
    except ExecutorGone:
        return True
    return False


class PortContract:
    """Subclasses say how to make a pool and how an executor's process dies."""

    async def pool_factory(self, request: pytest.FixtureRequest) -> ExecutorPool:
        raise NotImplementedError

    def die(self, executor: ExecutorHandle) -> None:
        """The executor's process dies under the node (not a kill the pool asked for)."""
        raise NotImplementedError

    @pytest.fixture
    async def pool(self, request: pytest.FixtureRequest) -> AsyncIterator[ExecutorPool]:
        pool = await self.pool_factory(request)
        yield pool
        await pool.close()

    # -- start and drain -------------------------------------------------------------------

    async def test_a_run_drains_in_order_from_seq_1_without_gaps_and_ends_once(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:hello", {"name": "port"})
        await executor.start(data)
        run = await Drained(data["execution_id"]).until(executor, lambda d: d.ended)
        assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
        assert {e.execution_id for e in run.events} == {data["execution_id"]}
        assert run.status_values[0] == S.EXECUTION_STATUS_STARTING
        assert run.status_values[-1] == S.EXECUTION_STATUS_SUCCEEDED
        assert sum(status in TERMINAL for status in run.status_values) == 1
        # A status change is the event with the same seq.
        by_seq = {e.seq: e for e in run.events}
        for seq, status, _ in run.statuses:
            assert by_seq[seq].status_changed.status == status
        results = [e.result for e in run.events if e.WhichOneof("kind") == "result"]
        assert len(results) == 1 and "port" in results[0].text
        # Once the terminal event is acknowledged the executor forgets the execution.
        await executor.drain({data["execution_id"]: run.acked}, 10, 0)
        assert data["execution_id"] not in await executor.hosted()

    async def test_events_are_drained_again_until_acknowledged(self, pool: ExecutorPool) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:emit_many", {"count": 20})
        eid = data["execution_id"]
        await executor.start(data)

        deadline = time.monotonic() + 60
        while True:  # never acknowledged: each drain hands out the whole buffer again
            first, statuses = await executor.drain({}, 1000, 0.2)
            if any(status in TERMINAL for _, status, _ in statuses.get(eid, [])):
                break
            assert time.monotonic() < deadline, "the run did not end"
        again, _ = await executor.drain({"no-such-execution": 5}, 1000, 0)  # a stale ack
        assert first[eid] == again[eid] and len(first[eid]) >= 22
        seqs = [S.Event.FromString(b).seq for b in first[eid]]
        rest, _ = await executor.drain({eid: seqs[9]}, 1000, 0)
        assert [S.Event.FromString(b).seq for b in rest[eid]] == seqs[10:]
        bounded, _ = await executor.drain({eid: seqs[9]}, 3, 0)
        assert [S.Event.FromString(b).seq for b in bounded[eid]] == seqs[10:13]

    async def test_a_retried_start_runs_the_flow_once(self, pool: ExecutorPool) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:hello", {"name": "twice"})
        await executor.start(data)
        await executor.start(data)  # the answer to the first was lost
        run = await Drained(data["execution_id"]).until(executor, lambda d: d.ended)
        assert run.status_values.count(S.EXECUTION_STATUS_STARTING) == 1
        assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))

    async def test_a_drain_waits_for_events_and_answers_empty_when_none_come(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        started = time.monotonic()
        assert await executor.drain({}, 10, 0.4) == ({}, {})
        assert time.monotonic() - started >= 0.3
        # A waiting drain answers as soon as events come, long before its wait is over.
        data = spec("tests.flowlib:hello")
        waiting = asyncio.ensure_future(executor.drain({}, 10, 20.0))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await executor.start(data)
        events, _ = await waiting
        assert events.get(data["execution_id"])
        assert time.monotonic() - started < 10.0

    async def test_hosted_names_each_execution_with_its_last_buffered_seq(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:sleepy", {"seconds": 30})
        eid = data["execution_id"]
        await executor.start(data)
        run = await Drained(eid).until(
            executor, lambda d: S.EXECUTION_STATUS_RUNNING in d.status_values
        )
        hosted = await executor.hosted()
        assert hosted[eid] >= run.acked >= 2
        await executor.cancel(eid, "done with it")

    async def test_a_failing_flow_ends_failed_and_the_executor_keeps_serving(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:fails")
        run = Drained(data["execution_id"])
        await executor.start(data)
        await run.until(executor, lambda d: d.ended)
        assert run.status_values[-1] == S.EXECUTION_STATUS_FAILED
        assert run.statuses[-1][2]  # with a reason
        after = spec("tests.flowlib:hello")
        await executor.start(after)
        ok = await Drained(after["execution_id"]).until(executor, lambda d: d.ended)
        assert ok.status_values[-1] == S.EXECUTION_STATUS_SUCCEEDED

    # -- cancel and input ------------------------------------------------------------------

    async def test_cancel_ends_a_run_cancelled_with_the_reason(self, pool: ExecutorPool) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:sleepy", {"seconds": 30})
        eid = data["execution_id"]
        await executor.start(data)
        run = await Drained(eid).until(
            executor, lambda d: S.EXECUTION_STATUS_RUNNING in d.status_values
        )
        await executor.cancel(eid, "the user changed their mind")
        await run.until(executor, lambda d: d.ended, timeout=30)
        assert run.statuses[-1][1:] == (S.EXECUTION_STATUS_CANCELLED, "the user changed their mind")
        with pytest.raises(FailedPrecondition):  # not hosted any more, or already ended
            await executor.cancel(eid, "again")

    async def test_calls_for_executions_it_does_not_host_are_not_found_as_themselves(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        with pytest.raises(NotFound) as caught:
            await executor.cancel("no-such-execution", "test")
        assert caught.value.reason == "EXECUTION_NOT_FOUND"
        with pytest.raises(NotFound):
            await executor.provide_input("no-such-execution", "r1", {"n": 1}, "ann")

    async def test_an_answer_reaches_a_flow_awaiting_input(self, pool: ExecutorPool) -> None:
        executor = await pool.acquire(SHARED)
        data = spec("tests.flowlib:asks")
        eid = data["execution_id"]
        await executor.start(data)
        run = await Drained(eid).until(
            executor, lambda d: S.EXECUTION_STATUS_AWAITING_INPUT in d.status_values
        )
        [request] = [e.input_requested for e in run.events if e.HasField("input_requested")]
        await executor.provide_input(eid, request.request_id, {"n": 7}, "spiffe://d/user/ann")
        await run.until(executor, lambda d: d.ended)
        assert run.status_values[-1] == S.EXECUTION_STATUS_SUCCEEDED
        [provided] = [e.input_provided for e in run.events if e.HasField("input_provided")]
        assert provided.request_id == request.request_id
        [result] = [e.result for e in run.events if e.HasField("result")]
        assert result.has_json and result.json.struct_value["answer"]["n"] == 7

    # -- hostile and broken ----------------------------------------------------------------

    async def test_a_malformed_start_is_refused_and_the_executor_keeps_serving(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(SHARED)
        bad = {**spec("tests.flowlib:hello"), "run_as_root": True}
        with pytest.raises(Exception) as caught:
            await executor.start(bad)
        assert not isinstance(caught.value, ExecutorGone)
        assert bad["execution_id"] not in await executor.hosted()
        good = spec("tests.flowlib:hello")
        await executor.start(good)
        run = await Drained(good["execution_id"]).until(executor, lambda d: d.ended)
        assert run.status_values[-1] == S.EXECUTION_STATUS_SUCCEEDED

    async def test_a_dead_executor_answers_every_call_with_executor_gone(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(PROCESS)
        data = spec("tests.flowlib:sleepy", {"seconds": 30})
        await executor.start(data)
        await Drained(data["execution_id"]).until(
            executor, lambda d: S.EXECUTION_STATUS_RUNNING in d.status_values
        )
        self.die(executor)
        await eventually(lambda: is_gone(executor.hosted()))
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: executor.start(spec("tests.flowlib:hello")),
            lambda: executor.drain({}, 10, 0.1),
            lambda: executor.cancel(data["execution_id"], "late"),
            lambda: executor.provide_input(data["execution_id"], "r", 1, "ann"),
            executor.hosted,
        ]
        for call in calls:
            with pytest.raises(ExecutorGone) as caught:
                await call()
            reason = str(caught.value)
            assert "\n" not in reason and len(reason) < 120, reason
            assert executor.name in reason and "died" in reason, reason
            assert not isinstance(caught.value, KodosumiError)

    async def test_a_drain_waiting_when_the_executor_dies_raises_executor_gone(
        self, pool: ExecutorPool
    ) -> None:
        executor = await pool.acquire(PROCESS)
        await executor.hosted()  # up and answering
        waiting = asyncio.ensure_future(executor.drain({}, 10, 60.0))
        await asyncio.sleep(0.3)
        self.die(executor)
        with pytest.raises(ExecutorGone):
            await asyncio.wait_for(waiting, 30.0)

    # -- the pool --------------------------------------------------------------------------

    async def test_shared_executors_host_many_and_isolated_ones_one(
        self, pool: ExecutorPool
    ) -> None:
        first = await pool.acquire(SHARED)
        first.executions.add("a")
        second = await pool.acquire(SHARED)
        assert second is first and first.isolation == SHARED
        one, two = await pool.acquire(PROCESS), await pool.acquire(PROCESS)
        assert one is not two and first not in (one, two)
        assert one.isolation == two.isolation == PROCESS
        assert {one.name, two.name, first.name} <= {e.name for e in pool.executors}

    async def test_a_released_isolated_executor_is_stopped(self, pool: ExecutorPool) -> None:
        executor = await pool.acquire(PROCESS)
        await executor.hosted()
        executor.executions.add("x")
        pool.release(executor, "x")
        assert executor not in pool.executors
        await eventually(lambda: is_gone(executor.hosted()))


class TestInProcessPort(PortContract):
    async def pool_factory(self, request: pytest.FixtureRequest) -> ExecutorPool:
        return InProcessExecutorPool()

    def die(self, executor: ExecutorHandle) -> None:
        assert isinstance(executor, InProcessExecutor)
        executor.crash()


@pytest.mark.ray
class TestRayPort(PortContract):
    async def pool_factory(self, request: pytest.FixtureRequest) -> ExecutorPool:
        from kodosumid.executors.ray_pool import RayExecutorPool

        request.getfixturevalue("ray_cluster")
        config = replace(PoolConfig(), shared_executors=1, warm_executors=0, preload_modules=())
        pool = RayExecutorPool(config, f"port-{next(_ids)}", detached=False)
        await pool.start()
        return pool

    def die(self, executor: ExecutorHandle) -> None:
        import ray

        # As a crash would: the pool did not ask for it, so the handle is not marked dead.
        ray.kill(executor.actor, no_restart=True)  # type: ignore[attr-defined]
