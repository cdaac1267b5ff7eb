"""What a node says about its executors in `GetNodeInfo` (which Ray node hosts which)."""

from __future__ import annotations

from kodosumi.v1 import node_pb2
from kodosumid.executors.ray_handle import RayExecutor
from kodosumid.executors.ray_pool import RayExecutorPool


def executor_message(executor: RayExecutor, *, warm: bool = False) -> node_pb2.ExecutorInfo:
    placement = executor.placement
    return node_pb2.ExecutorInfo(
        name=executor.name,
        isolation=executor.isolation,
        executions=len(executor.executions),
        warm=warm,
        retiring=executor.winding_down,
        ray_node_id=executor.ray_node_id,
        ray_node_address=executor.ray_node_address,
        resources=dict(placement.resources),
        labels=dict(placement.labels),
        placement_node=placement.node,
    )


def executor_messages(pool: RayExecutorPool) -> list[node_pb2.ExecutorInfo]:
    return [
        *(executor_message(e) for e in [*pool.shared, *pool.busy_isolated] if not e.dead),
        *(executor_message(e, warm=True) for e in pool.spares if not e.dead),
    ]
