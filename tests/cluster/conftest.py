"""A Ray head on loopback for the tests of a node driving an external cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
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
        # `ray start` turns 127.0.0.1 into the host's routable address unless clusters are
        # "disabled": this single-host head stays on loopback. Only this head gets it; in a
        # shell running `ray start --address` it would make the worker refuse to join.
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
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
        process.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def cluster_actors(address: str, prefix: str) -> list[str]:
    """Names of the live actors in the cluster starting with `prefix` (asked from a fresh
    driver process: the test process may already drive the session's own Ray)."""
    script = (
        "import json, ray\n"
        f"ray.init(address={address!r}, log_to_driver=False, configure_logging=False)\n"
        "names = ray.util.list_named_actors(all_namespaces=True)\n"
        f"print(json.dumps([n['name'] for n in names if n['name'].startswith({prefix!r})]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        timeout=120,
        # Dial the loopback head as given (see `ray_head`).
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
    ).stdout
    return list(json.loads(out.decode().strip().splitlines()[-1]))
