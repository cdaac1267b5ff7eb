"""`koco watch` (the real CLI, as processes) across a node restart: the node is SIGKILLed
mid-run and started again on the same address while its flow keeps running on an external
Ray cluster. The watchers say they are reconnecting, come back by themselves, and between
them get every event once — none lost, none repeated."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.node.helpers import launch
from tests.node.test_daemon import REPO, Daemon

CONFIG = """
[node]
id = "restart-node"
listen = "127.0.0.1:{port}"
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
TICKS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _koco(node: Daemon, out: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "kodoclient", "--node", node.address]
    command += ["--state-dir", str(node.state_dir), *args]
    return subprocess.Popen(
        command, cwd=REPO, stdout=out.open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy()
    )


@pytest.mark.slow
async def test_koco_watch_survives_a_node_restart_without_loss_or_repeats(
    ray_head: str, tmp_path: Path
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(port=_free_port(), repo=REPO, address=ray_head))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    as_json, as_text = tmp_path / "watch.jsonl", tmp_path / "watch.txt"
    watchers: list[subprocess.Popen[bytes]] = []
    try:
        node.start()
        channel, flows = node.stub()
        execution_id = await launch(flows, "ticking", {"ticks": TICKS, "interval": 0.15})
        await channel.close()  # type: ignore[attr-defined]
        watchers = [
            _koco(node, as_json, "--json", "watch", execution_id),
            _koco(node, as_text, "watch", execution_id),
        ]
        _until(lambda: as_json.read_text().count("tick ") >= 5, "the first ticks")
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(30)
        _until(lambda: "reconnecting to" in as_text.read_text(), "the reconnecting notice")
        node.start()  # same address; the flow kept ticking in its detached executor
        for watcher in watchers:
            assert watcher.wait(120) == 0, as_text.read_text()[-2000:]
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
        node.stop()
    events = [json.loads(line) for line in as_json.read_text().splitlines()]
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    ticks = [e["progress"]["message"] for e in events if "progress" in e]
    assert ticks == [f"tick {i}" for i in range(TICKS)]
    assert events[-1]["status_changed"]["status"] == "EXECUTION_STATUS_SUCCEEDED"
    text = as_text.read_text()
    assert "reconnecting to" in text and "reconnected to" in text, text
    shown = [line.rsplit(" ", 2)[-2:] for line in text.splitlines() if "progress" in line]
    assert shown == [["tick", str(i)] for i in range(TICKS)]  # each tick once, in order
    assert "SUCCEEDED" in text.splitlines()[-1]
