"""A placement (`port.Placement`) as Ray actor options: resources, a label selector, a node
affinity. Ray's scheduler then keeps an executor off hosts that do not match."""

from __future__ import annotations

import re
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from kodosumi.errors import FailedPrecondition
from kodosumid.executors.port import Placement

_NODE_ID = re.compile(r"^[0-9a-f]{56}$")


def ray_node_id(node: str) -> str:
    """The id of the alive Ray node named by its id, address or host name."""
    if _NODE_ID.match(node):
        return node
    for entry in ray.nodes():  # type: ignore[no-untyped-call]
        if not entry.get("Alive"):
            continue
        if node in (entry.get("NodeManagerAddress"), entry.get("NodeManagerHostname")):
            return str(entry["NodeID"])
    raise FailedPrecondition(
        f"no alive Ray node {node!r} in the cluster", reason="NO_SUCH_RAY_NODE"
    )


def actor_options(placement: Placement) -> dict[str, Any]:
    """Options for `RemoteExecutor.options(...)`. An executor asks for no CPU unless its
    placement says so: it mostly waits on I/O, and Ray must not refuse it for that."""
    resources = dict(placement.resources)
    options: dict[str, Any] = {"num_cpus": resources.pop("CPU", 0)}
    if "GPU" in resources:
        options["num_gpus"] = resources.pop("GPU")
    if "memory" in resources:
        options["memory"] = resources.pop("memory")
    if resources:
        options["resources"] = resources
    if placement.labels:
        options["label_selector"] = dict(placement.labels)
    if placement.node:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            node_id=ray_node_id(placement.node), soft=False
        )
    return options
