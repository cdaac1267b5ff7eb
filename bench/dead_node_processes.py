"""The processes of the dead-node bench (bench/dead_node_detection.py): a real `registryd`
child with the bench's lease rules, and trial nodes, each a child process running the node's
own registration code (`--serve-node`), with certificates from the bench's CA."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.kodosumi"
TTL_FACTOR = 3.0
SWEEP_INTERVAL = 1.0


# -- a trial node (child process: `--serve-node NODE_ID`) -----------------------------------------


async def serve_node(node_id: str, registry: str, pki: Path, interval: float) -> None:
    """Register and heartbeat as a node does until killed (or SIGTERM)."""
    from kodosumi.v1 import node_pb2
    from kodosumid.config import RegistryClientConfig
    from kodosumid.network.registration import Registration
    from kodosumid.network.registry_client import RegistryClient as NodeRegistryClient

    tls = TlsMaterial(
        (pki / "ca.pem").read_bytes(),
        (pki / f"{node_id}.pem").read_bytes(),
        (pki / f"{node_id}.key").read_bytes(),
    )
    client = NodeRegistryClient(registry, tls, call_timeout=5.0)
    info = node_pb2.NodeInfo(node_id=node_id, version="bench", endpoints=["127.0.0.1:9"])
    settings = RegistryClientConfig(
        heartbeat_interval=interval, retry_initial_seconds=0.1, retry_max_seconds=1.0
    )
    registration = Registration(client, lambda: info, settings)
    registration.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await client.close()


# -- the registry (child process) -----------------------------------------------------------------


@dataclass
class Registry:
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    address: str = ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KODOSUMI_REGISTRY")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    return env


def spawn(args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[bytes]:
    """`python -m ARGS` from the repository (returns at once: the child starts on its own)."""
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, **options
    )


async def start_registry(folder: Path, pki: Path) -> Registry:
    env = child_env()
    env["KODOSUMI_REGISTRY_LEASE_TTL_FACTOR"] = str(TTL_FACTOR)
    env["KODOSUMI_REGISTRY_LEASE_SWEEP_INTERVAL"] = str(SWEEP_INTERVAL)
    state = folder / "registry"
    log = (folder / "registryd.log").open("wb")
    process = spawn(
        [
            "registryd",
            "--state-dir",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--ca-cert",
            str(pki / "ca.pem"),
            "--ca-key",
            str(pki / "ca.key"),
            "--log-level",
            "WARNING",
        ],
        env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    registry = Registry(process, log)

    def serving() -> bool:
        with contextlib.suppress(OSError, ValueError):
            registry.address = str(json.loads((state / "registry.json").read_text())["address"])
        return bool(registry.address)

    try:
        await until(serving, 60, "the registry serves", process)
    except BaseException:
        registry.stop()
        raise
    return registry


async def until(
    condition: Callable[[], bool],
    deadline: float,
    what: str,
    *processes: subprocess.Popen[bytes],
) -> None:
    """Poll `condition` with a deadline; fail early when a process it waits for exited."""
    started = time.monotonic()
    while not condition():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with {process.returncode}")
        if time.monotonic() - started > deadline:
            raise RuntimeError(f"not within {deadline:.0f} s: {what}")
        await asyncio.sleep(0.02)


def issue_nodes(ca: CertificateAuthority, pki: Path, node_ids: list[str]) -> None:
    for node_id in node_ids:
        cert, key = ca.issue(SpiffeId.node(DOMAIN, node_id))
        write_public(pki / f"{node_id}.pem", cert_pem(cert))
        write_private(pki / f"{node_id}.key", key_pem(key))
