"""The node's serving status follows its executor pool: launches are NOT_SERVING (overall
health and FlowService) while no executor can be had; the reason is `degraded_reason` in
GetNodeInfo."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kodosumi.rpc.server import set_serving
from kodosumid.executors.ray_pool import RayExecutorPool

log = logging.getLogger(__name__)


async def follow_pool(
    pool: RayExecutorPool, health: object, node_id: str, services: Sequence[str]
) -> None:
    """Runs until cancelled; `services` are the names that stop serving launches."""
    serving = True
    while True:
        await pool.changed.wait()
        pool.changed.clear()
        up = not pool.unavailable
        if up != serving:
            serving = up
            log.warning(
                "node %s: launches %s (%s)",
                node_id,
                "serve again" if up else "NOT_SERVING",
                pool.problem or "executors start again",
            )
            await set_serving(health, services, up)  # type: ignore[arg-type]
