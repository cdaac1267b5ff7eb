"""The embedded Ray is reachable from this host only (issue 11, item 2): no process of a node
listens beyond loopback, and Ray's token is the node's own (state dir, 0600), not
`~/.ray/auth_token`. A local process without that token cannot drive the node's Ray."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ray.thirdparty_files import psutil

from kodosumi.v1 import node_pb2, node_pb2_grpc
from tests.node.helpers import eventually
from tests.node.test_daemon import REPO, Daemon

CONFIG = """
[node]
id = "loopback-node"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[pool]
shared_executors = 1
warm_executors = 1
preload_modules = []
"""


def _listening(root: int) -> dict[int, list[tuple[str, int, str]]]:
    """Listening TCP sockets of a process and all its descendants: pid -> (ip, port, name)."""
    found: dict[int, list[tuple[str, int, str]]] = {}
    process = psutil.Process(root)
    for p in [process, *process.children(recursive=True)]:
        try:
            sockets = [c for c in p.net_connections(kind="inet") if c.status == "LISTEN"]
            name = p.name()
        except psutil.Error:
            continue
        if sockets:
            found[p.pid] = [(c.laddr.ip, c.laddr.port, name) for c in sockets]
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%", maxsplit=1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.fixture
def loopback_node(tmp_path: Path) -> Daemon:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    return node


@pytest.mark.slow
async def test_no_process_of_a_node_listens_beyond_loopback(
    loopback_node: Daemon, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    node = loopback_node
    try:
        node.start(env={"HOME": str(home)})
        assert node.process is not None
        channel, _ = node.stub()
        stub = node_pb2_grpc.NodeServiceStub(channel)  # type: ignore[arg-type]

        async def executors_up() -> bool:
            info = await stub.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
            return len(info.node.executors) >= 2

        await eventually(executors_up, timeout=120)
        await channel.close()  # type: ignore[attr-defined]
        listening = _listening(node.process.pid)
        names = {name for sockets in listening.values() for _, _, name in sockets}
        # The node's gRPC port, Ray's GCS and raylet, and the executors at least.
        assert {"gcs_server", "raylet"} <= names, listening
        exposed = {
            pid: sockets
            for pid, sockets in listening.items()
            if any(not _loopback(ip) for ip, _, _ in sockets)
        }
        assert exposed == {}

        token = node.state_dir / "ray" / "auth_token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
        assert not (home / ".ray" / "auth_token").exists()

        # Hostile: a local process that knows the GCS port but not the token gets nothing.
        gcs_port = next(
            port
            for sockets in listening.values()
            for _, port, name in sockets
            if name == "gcs_server"
        )
        attacker = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-c",
                "import ray\n"
                f"ray.init(address='127.0.0.1:{gcs_port}', namespace='kodosumi')\n"
                "print('CONNECTED', ray.util.list_named_actors())\n",
            ],
            env={
                **os.environ,
                "HOME": str(tmp_path),
                # So that this `ray.init` dials 127.0.0.1 as given (the GCS is not on the
                # host's routable address at all).
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": "0" * 64,
            },
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert b"CONNECTED" not in attacker.stdout
        assert attacker.returncode != 0
        assert b"InvalidAuthToken" in attacker.stderr or b"uthentication" in attacker.stderr
    finally:
        node.stop()
