"""How a running node describes itself: `NodeInfo` (GetNodeInfo, and the registry's copy
without executors) and `node.json` in the state directory, which local tools read to find
the node (address, identity, pid)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from kodosumi.v1 import node_pb2
from kodosumid.catalog import Catalog
from kodosumid.convert import flow_message
from kodosumid.executions.fanout import WatchHub
from kodosumid.executors.describe import executor_messages
from kodosumid.servicers import VERSION, node_load

if TYPE_CHECKING:
    from kodosumid.app import NodeApp


def node_info(
    app: NodeApp, catalog: Catalog, hub: WatchHub, *, detail: bool = True
) -> node_pb2.NodeInfo:
    """The node's self-description; without `detail` (the registry's copy) no executors."""
    assert app.executions is not None
    info = node_pb2.NodeInfo(
        node_id=app.config.node_id,
        version=VERSION,
        identity=app.identity,
        endpoints=list(app.endpoints) or [app.address],
        flows=[flow_message(f, app.config.node_id) for f in catalog.list()],
        load=node_load(app.executions, hub.watcher_count, app.started),
        ray_address=app.ray_address,
        capabilities=["watch-batches", "human-input", "process-isolation"],
    )
    info.start_time.FromNanoseconds(app.start_time_ns)
    if app.pool is not None:
        info.degraded_reason = app.pool.problem
        if detail:
            info.executors.extend(executor_messages(app.pool))
    broken = catalog.unavailable()
    if broken and not info.degraded_reason:
        # Flows found broken when the node checked its catalog (kodosumid/catalog_check.py).
        names = ", ".join(f.name for f in broken)
        info.degraded_reason = f"flows unavailable: {names} (koco flows NAME says why)"
    if app.observability is not None:
        app.observability.fill_load(info.load)
    return info


def write_info_file(app: NodeApp) -> None:
    data = {
        "address": app.address,
        "endpoints": list(app.endpoints),
        "node_id": app.config.node_id,
        "insecure": app.config.insecure,
        "pid": os.getpid(),
        "identity": app.identity,
    }
    tmp = app.info_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(app.info_file)
