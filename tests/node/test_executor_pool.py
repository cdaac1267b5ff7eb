"""The Ray executor pool behind the executor port: failures translated, actors never leaked."""

from __future__ import annotations

import pytest
import ray

from kodosumi.errors import NotFound
from kodosumid.config import PoolConfig
from kodosumid.executors.port import PROCESS, SHARED, ExecutorGone
from kodosumid.executors.ray_pool import RayExecutorPool
from tests.node.helpers import eventually


def _pool(node_id: str, **changes: int) -> RayExecutorPool:
    config = PoolConfig(shared_executors=1, warm_executors=1, preload_modules=())
    for key, value in changes.items():
        object.__setattr__(config, key, value)
    return RayExecutorPool(config, node_id, detached=False)


def _names(node_id: str) -> list[str]:
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
