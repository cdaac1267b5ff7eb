"""A running node imports neither the engine nor CrewAI: flows run in executor processes,
and the node reads what it needs of them (the catalog, YAML specs) without the engine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.v1 import event_pb2, flow_pb2_grpc
from tests.node.helpers import collect, launch, statuses

REPO = Path(__file__).resolve().parents[2]

# No [[flows]]: the example catalog, YAML crew spec included (it used to import the engine).
CONFIG = """
[node]
id = "imports-node"
listen = "127.0.0.1:0"
insecure = true
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[discovery]
enabled = false

[pool]
shared_executors = 1
warm_executors = 0
preload_modules = []
"""

# `kodosumid` itself, writing the names of its modules to a file when it exits.
WRAPPER = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from kodosumid.cli import main
main(sys.argv[2:])
"""


def _spawn(tmp_path: Path, state: Path, modules_file: Path) -> subprocess.Popen[bytes]:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO))
    args = ["--config", str(config), "--state-dir", str(state)]
    return subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(modules_file), *args],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("ab"),
    )


@pytest.mark.slow
async def test_a_running_node_has_not_imported_the_engine_or_crewai(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    modules_file = tmp_path / "modules.json"
    info = state / "node.json"
    process = _spawn(tmp_path, state, modules_file)
    try:
        deadline = time.monotonic() + 90
        while not info.exists():
            assert process.poll() is None, f"kodosumid exited with {process.returncode}"
            assert time.monotonic() < deadline, "kodosumid did not start within 90 s"
            await asyncio.sleep(0.05)
        address = json.loads(info.read_text())["address"]
        channel = open_channel(address, None, expect=ServerExpectation.node())
        flows = flow_pb2_grpc.FlowServiceStub(channel)
        # A launch goes the whole way: catalog, dispatch, an executor, drain, store, watch.
        execution_id = await launch(flows, "hello", {"name": "imports"})
        events = await collect(flows, execution_id)
        assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
        await channel.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    modules = json.loads(modules_file.read_text())
    assert "kodosumid.app" in modules and "ray" in modules
    assert [m for m in modules if m == "engine" or m.startswith("engine.")] == []
    assert [m for m in modules if m == "crewai" or m.startswith("crewai.")] == []
