"""The executor pool on an external cluster (`ray start --head` on loopback): detached
executors never outlive a node that stopped, and adopted ones retire after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from kodosumi.v1 import event_pb2, node_pb2, node_pb2_grpc
from tests.cluster.conftest import cluster_actors
from tests.node.helpers import collect, eventually, launch, statuses
from tests.node.test_daemon import REPO, Daemon

S = event_pb2

CONFIG = """
[node]
id = "{node_id}"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[ray]
address = "{address}"

[pool]
shared_executors = {shared}
warm_executors = {warm}
{extra}

[[flows]]
name = "ticking"
entrypoint = "tests.flowlib:ticking"
"""


def _daemon(
    tmp_path: Path, ray_head: str, node_id: str, shared: int, warm: int, extra: str = ""
) -> Daemon:
    config = tmp_path / "node.toml"
    config.write_text(
        CONFIG.format(
            node_id=node_id, repo=REPO, address=ray_head, shared=shared, warm=warm, extra=extra
        )
    )
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    return node


@pytest.mark.slow
async def test_sigterm_right_after_serving_leaves_no_executor(
    ray_head: str, tmp_path: Path
) -> None:
    # The default preload (CrewAI) keeps the executors starting for seconds: the node is
    # stopped while none of them has answered yet.
    node = _daemon(tmp_path, ray_head, "sigterm-node", shared=2, warm=2)
    prefix = "kodosumi-exec-sigterm-node-"
    try:
        node.start()
        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)
        assert node.process.wait(60) == 0
    finally:
        node.stop()
    assert cluster_actors(ray_head, prefix) == []


async def _node_info(node: Daemon) -> node_pb2.NodeInfo:
    channel, _ = node.stub()
    try:
        stub = node_pb2_grpc.NodeServiceStub(channel)  # type: ignore[arg-type]
        response = await stub.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
        return response.node
    finally:
        await channel.close()  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_after_crashes_with_runs_in_flight_the_pool_returns_to_its_size(
    ray_head: str, tmp_path: Path
) -> None:
    node = _daemon(
        tmp_path, ray_head, "crashing-node", shared=1, warm=1, extra="preload_modules = []"
    )
    prefix = "kodosumi-exec-crashing-node-"
    runs: list[str] = []
    try:
        for _crash in range(3):
            node.start()
            channel, flows = node.stub()
            for _ in range(2):
                runs.append(await launch(flows, "ticking", {"ticks": 30, "interval": 0.1}))
            await collect(flows, runs[-1], limit=5)  # running
            await channel.close()  # type: ignore[attr-defined]
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGKILL)
            node.process.wait(30)
        node.start()
        channel, flows = node.stub()
        ended = await asyncio.gather(*(collect(flows, r, timeout=120) for r in runs))
        for events in ended:
            assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
        # New launches go to the pool's own executor, never to an adopted one.
        fresh = await launch(flows, "ticking", {"ticks": 2, "interval": 0.01})
        assert statuses(await collect(flows, fresh))[-1] == S.EXECUTION_STATUS_SUCCEEDED
        await channel.close()  # type: ignore[attr-defined]

        async def back_to_size() -> bool:
            info = await _node_info(node)
            return (info.load.executor_actors, info.load.warm_executors) == (2, 1)

        await eventually(back_to_size, timeout=60)
        info = await _node_info(node)
        assert not any(e.retiring for e in info.executors)
        shared = [e.name for e in info.executors if e.isolation == "shared"]
        assert len(shared) == 1
        with sqlite3.connect(f"file:{node.state_dir / 'events.sqlite'}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT executor FROM executions WHERE execution_id = ?", (fresh,)
            ).fetchone()
        assert row[0] in shared
        assert sorted(cluster_actors(ray_head, prefix)) == sorted(e.name for e in info.executors)
    finally:
        node.stop()
