"""After a node restart on an external cluster: the node's detached executors that outlived
the previous run are found by name; those still hosting executions are adopted (they finish
them, then retire), idle ones (warm spares of the previous run) are stopped.

Part of the Ray pool (`ray_pool.RayExecutorPool.survivors`), kept apart because it runs
once, at recovery, and shares nothing with handing executors out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ray
from ray.exceptions import RayError

from kodosumid.executors.port import PROCESS, SHARED, ExecutorGone, ExecutorHandle
from kodosumid.executors.ray_handle import RayExecutor

if TYPE_CHECKING:
    from kodosumid.executors.ray_pool import RayExecutorPool


async def adopt_survivors(pool: RayExecutorPool) -> list[ExecutorHandle]:
    if not pool.detached:
        return []
    adopted: list[ExecutorHandle] = []
    for name in _existing_actor_names(pool.prefix):
        if name in pool._created:
            continue  # one of this run's own
        try:
            actor = ray.get_actor(name, namespace=pool.namespace)
        except (RayError, ValueError):
            continue
        isolation = SHARED if name[len(pool.prefix)] == SHARED[0] else PROCESS
        executor = RayExecutor(name, actor, isolation, adopted=True, prepare=pool._prepare)
        pool._created[name] = executor
        try:
            hosted = await executor.hosted()
            await executor.locate()
        except ExecutorGone:
            pool._created.pop(name, None)
            continue
        if not hosted:
            # An idle executor of the previous run (a warm spare): nothing to resume.
            pool.kill(executor)
            continue
        executor.executions.update(hosted)
        (pool.shared if isolation == SHARED else pool.busy_isolated).append(executor)
        adopted.append(executor)
    return adopted


def _existing_actor_names(prefix: str) -> list[str]:
    """Named executors of this node alive in the cluster."""
    names = ray.util.list_named_actors(all_namespaces=False)
    return [n for n in names if isinstance(n, str) and n.startswith(prefix)]
