"""The Ray executor pool behind the executor port: failures translated, actors never leaked."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest
import ray
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ray.exceptions import RayError

from kodosumi.errors import NotFound
from kodosumi.v1 import event_pb2, node_pb2
from kodosumid.config import PoolConfig
from kodosumid.executors.port import PROCESS, SHARED, ExecutorGone
from kodosumid.executors.ray_pool import RayExecutorPool
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.helpers import collect, eventually, launch, statuses

S = event_pb2


def _pool(node_id: str, **changes: int) -> RayExecutorPool:
    config = PoolConfig(shared_executors=1, warm_executors=1, preload_modules=())
    return RayExecutorPool(replace(config, **changes), node_id, detached=False)


def _names(node_id: str) -> list[dict[str, str]]:
    return [
        n
        for n in ray.util.list_named_actors(all_namespaces=True)
        if isinstance(n, dict) and n["name"].startswith(f"kodosumi-exec-{node_id}-")
    ]


async def test_a_catalog_error_of_the_engine_reaches_the_caller_as_itself(
    ray_cluster: None,
) -> None:
    pool = _pool("pool-errors")
    try:
        await pool.start()
        executor = await pool.acquire(SHARED)
        with pytest.raises(NotFound):
            await executor.cancel("no-such-execution", "test")
    finally:
        await pool.close()


async def test_a_dead_executor_is_gone_with_one_line_and_no_ray_internals(
    ray_cluster: None,
) -> None:
    pool = _pool("pool-dead")
    try:
        await pool.start()
        executor = await pool.acquire(PROCESS)
        pid = await executor.ready()  # type: ignore[attr-defined]
        ray.kill(executor.actor, no_restart=True)  # type: ignore[attr-defined]
        with pytest.raises(ExecutorGone) as caught:
            await executor.drain({}, 10, 0.1)
        reason = str(caught.value)
        assert "\n" not in reason and len(reason) < 120, reason
        assert executor.name in reason and "died" in reason
        for internal in (str(pid), "actor_id", "127.0.0.1", "pid"):
            assert internal not in reason
    finally:
        await pool.close()


async def test_close_kills_every_actor_it_created(ray_cluster: None) -> None:
    pool = _pool("pool-close", shared_executors=2, warm_executors=2)
    await pool.start()
    await pool.acquire(PROCESS)
    assert len(_names("pool-close")) >= 4
    await pool.close()

    async def none_left() -> bool:
        return _names("pool-close") == []

    await eventually(none_left, timeout=10)


class Killer:
    """Kills every executor of a node as soon as it exists (Ray's memory monitor at
    start-up, say), in a thread: the node under test shares this event loop."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.stop = threading.Event()
        self.killed = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in _names(self.node_id):
                try:
                    ray.kill(ray.get_actor(entry["name"], namespace=entry["namespace"]))
                    self.killed += 1
                except (ValueError, RayError):
                    pass
            time.sleep(0.01)


async def _health(node: RunningNode) -> int:
    health = health_pb2_grpc.HealthStub(node.channel)
    response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return int(response.status)


async def test_the_pool_heals_after_its_executors_are_killed_at_start_up(
    start_node: NodeFactory,
) -> None:
    killer = Killer("healing-node")
    killing = asyncio.get_running_loop().run_in_executor(None, killer.run)
    pool = PoolConfig(
        shared_executors=1,
        warm_executors=1,
        preload_modules=(),
        acquire_timeout_seconds=3.0,
        retry_initial_seconds=0.1,
        retry_max_seconds=0.5,
    )
    try:
        node = await start_node(node_id="healing-node", pool=pool)

        async def not_serving() -> bool:
            return await _health(node) == health_pb2.HealthCheckResponse.NOT_SERVING

        await eventually(not_serving)
        info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
        assert "died" in info.degraded_reason and "\n" not in info.degraded_reason
        # While no executor can be had, a launch waits (bounded), then fails saying why.
        failed = await launch(node.flows, "hello", {"name": "a"})
        events = await collect(node.flows, failed)
        assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
        reason = events[-1].status_changed.reason
        assert "no executor could be started within 3 s" in reason and "\n" not in reason
    finally:
        killer.stop.set()
        await killing
    assert killer.killed >= 2

    # Memory is free again: the pool heals, health returns, launches run (none stale).
    async def serving() -> bool:
        return await _health(node) == health_pb2.HealthCheckResponse.SERVING

    await eventually(serving)
    execution_id = await launch(node.flows, "hello", {"name": "b"})
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    info = (await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
    assert info.degraded_reason == ""
    assert info.load.executor_actors == 2 and info.load.warm_executors == 1
    assert {e.ray_node_id for e in info.executors} != {""}
