"""A node driving an external Ray cluster (`ray start --head` on loopback): it joins with
`--ray-address`, and after a SIGKILL the restarted node re-attaches to the detached
executors and drains from its last stored `seq` — watchers get every event exactly once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kodosumi.v1 import event_pb2
from tests.node.helpers import collect, launch, statuses
from tests.node.test_daemon import REPO, Daemon

S = event_pb2

CONFIG = """
[node]
id = "cluster-node"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[ray]
address = "{address}"

[pool]
shared_executors = 1
warm_executors = 0

[[flows]]
name = "ticking"
entrypoint = "tests.flowlib:ticking"
"""


@pytest.mark.slow
async def test_node_restart_on_a_cluster_loses_no_event(ray_head: str, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO, address=ray_head))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    try:
        node.start()
        channel, flows = node.stub()
        execution_id = await launch(flows, "ticking", {"ticks": 40, "interval": 0.1})
        first = (await collect(flows, execution_id, limit=8))[:8]
        await channel.close()  # type: ignore[attr-defined]
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(30)

        node.start()  # the flow kept running in its detached executor meanwhile
        channel, flows = node.stub()
        rest = await collect(flows, execution_id, after_seq=first[-1].seq)
        await channel.close()  # type: ignore[attr-defined]
    finally:
        node.stop()
    events = first + rest
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.progress.message for e in events if e.HasField("progress")] == [
        f"tick {i}" for i in range(40)
    ]
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
