"""A node driving an external Ray cluster (`ray start --head` on loopback): it joins with
`--ray-address`, and after a SIGKILL the restarted node re-attaches to the detached
executors and drains from its last stored `seq` — watchers get every event exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on loopback, started and stopped by the test (only its own processes)."""
    port = _free_port()
    temp = tmp_path_factory.mktemp("rayhead")
    ray_bin = Path(sys.executable).parent / "ray"
    process = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(temp / "head.log").open("wb"),
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError((temp / "head.log").read_text()[-2000:])
        time.sleep(0.1)
    yield address
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


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
