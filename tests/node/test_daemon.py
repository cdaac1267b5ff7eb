"""`kodosumid` as a real process: SIGTERM stops it gracefully; after a SIGKILL, the restarted
node records an explicit terminal status for what was running (embedded Ray died with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import dev_client_files
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc
from tests.node.helpers import collect, eventually, launch, statuses

REPO = Path(__file__).resolve().parents[2]
S = event_pb2

CONFIG = """
[node]
id = "daemon-node"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
cancel_grace_seconds = 1.0
python_path = ["{repo}"]

[pool]
shared_executors = 1
warm_executors = 0

[[flows]]
name = "stubborn"
entrypoint = "tests.flowlib:stubborn"

[[flows]]
name = "sleepy"
entrypoint = "tests.flowlib:sleepy"
"""


class Daemon:
    def __init__(self, state_dir: Path, config: Path) -> None:
        self.state_dir = state_dir
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        info = self.state_dir / "node.json"
        info.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kodosumid",
                "--config",
                str(self.config),
                "--state-dir",
                str(self.state_dir),
            ],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=(self.state_dir / "daemon.log").open("ab"),
        )
        deadline = time.monotonic() + 60
        while not info.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"kodosumid exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError("kodosumid did not start within 60 s")
            time.sleep(0.05)

    @property
    def address(self) -> str:
        return str(json.loads((self.state_dir / "node.json").read_text())["address"])

    def stub(self) -> tuple[object, flow_pb2_grpc.FlowServiceStub]:
        channel = open_channel(
            self.address, dev_client_files(self.state_dir).read(), expect=ServerExpectation.node()
        )
        return channel, flow_pb2_grpc.FlowServiceStub(channel)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    yield node
    node.stop()


async def _running(flows: flow_pb2_grpc.FlowServiceStub, execution_id: str) -> bool:
    reply = await flows.GetExecution(
        flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
    )
    return bool(reply.execution.status == S.EXECUTION_STATUS_RUNNING)


@pytest.mark.slow
async def test_sigterm_stops_gracefully_and_ends_running_executions(daemon: Daemon) -> None:
    daemon.start()
    channel, flows = daemon.stub()
    execution_id = await launch(flows, "stubborn", {"seconds": 300})
    await eventually(lambda: _running(flows, execution_id))
    watched = collect(flows, execution_id)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    events = await watched
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert "shutting down" in events[-1].status_changed.reason
    assert daemon.process.wait(60) == 0
    assert not (daemon.state_dir / "node.json").exists()
    await channel.close()  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_after_sigkill_the_restarted_node_fails_what_was_running(daemon: Daemon) -> None:
    daemon.start()
    channel, flows = daemon.stub()
    execution_id = await launch(flows, "sleepy", {"seconds": 300})
    await eventually(lambda: _running(flows, execution_id))
    await channel.close()  # type: ignore[attr-defined]
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait(30)

    daemon.start()
    channel, flows = daemon.stub()
    events = await collect(flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "restarted" in events[-1].status_changed.reason
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    await channel.close()  # type: ignore[attr-defined]
