"""A node that `koco run` starts for the length of one command when none is reachable.

The node runs as a subprocess (`python -m kodosumid`) on a free loopback port. It is ready
once it has written its `node.json` and answered a call; the wait polls both under one
deadline and notices at once when the process dies. It is stopped with SIGTERM, then
SIGKILL if it will not go. kodoclient never imports the daemon: it only starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from kodoclient._async import AsyncClient
from kodoclient.config import NODE_FILE, ConnectConfig, read_node_file
from kodoclient.errors import KodoclientError
from kodosumi.tls import dev_client_files

DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "kodosumid")
LOG_NAME = "embedded-node.log"
# Ray's embedded cluster takes a few seconds on a small machine; leave room for a cold one.
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
_POLL = 0.1
_LOG_TAIL_LINES = 20


@dataclass(frozen=True, slots=True)
class EmbeddedNode:
    config: ConnectConfig
    state_dir: Path
    pid: int
    log_path: Path
    node_id: str


def _child_env() -> dict[str, str]:
    # In a source checkout kodosumid sits next to kodoclient but is not installed; let the
    # child import it from there whatever its working directory.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    previous = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{root}{os.pathsep}{previous}" if previous else root
    return env


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _failed(message: str, log_path: Path) -> KodoclientError:
    tail = _log_tail(log_path)
    detail = f"{message} (log: {log_path})" + (f"\n{tail}" if tail else "")
    return KodoclientError(grpc.StatusCode.UNAVAILABLE, detail, reason="EMBEDDED_NODE_FAILED")


@contextlib.asynccontextmanager
async def embedded_node(
    *,
    state_dir: Path | None,
    flows: Sequence[str] = (),
    insecure: bool = False,
    call_timeout: float = 10.0,
    startup_timeout: float = STARTUP_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
    command: Sequence[str] = DEFAULT_COMMAND,
) -> AsyncIterator[EmbeddedNode]:
    """Start a node, yield how to reach it once it answers, stop it on the way out.

    `state_dir=None` uses a temporary directory that is removed afterwards (used when
    another node already owns the default state directory).
    """
    temporary = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="koco-node-")) if state_dir is None else state_dir
    state.mkdir(parents=True, exist_ok=True)
    log_path = state / LOG_NAME
    # Loopback only, so advertising it to LAN peers would only mislead them.
    argv = [*command, "--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-lan"]
    if insecure:
        argv.append("--insecure")
    for flow in flows:
        argv += ["--flow", flow]
    started = time.time()
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_child_env()
        )
    try:
        yield await _wait_ready(process, state, started, call_timeout, startup_timeout, log_path)
    finally:
        await _stop(process, stop_timeout)
        if temporary:
            shutil.rmtree(state, ignore_errors=True)


async def _wait_ready(
    process: asyncio.subprocess.Process,
    state: Path,
    started: float,
    call_timeout: float,
    startup_timeout: float,
    log_path: Path,
) -> EmbeddedNode:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_timeout
    exited = asyncio.ensure_future(process.wait())
    try:
        while True:
            if exited.done():
                raise _failed(f"the embedded node exited with code {process.returncode}", log_path)
            node = await _probe(process.pid, state, started, call_timeout)
            if node is not None:
                return EmbeddedNode(node[0], state, process.pid, log_path, node[1])
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _failed(
                    f"the embedded node was not ready within {startup_timeout:g} s", log_path
                )
            # Doubles as the poll interval and wakes up at once if the process dies.
            await asyncio.wait({exited}, timeout=min(_POLL, remaining))
    finally:
        if not exited.done():
            exited.cancel()


async def _probe(
    pid: int, state: Path, started: float, call_timeout: float
) -> tuple[ConnectConfig, str] | None:
    """How to reach the node once its node.json is ours and it answers; else None."""
    node = read_node_file(state)
    if node is None:
        return None
    # A node.json left by an earlier node in the same directory is not ours.
    try:
        fresh = node.pid == pid or (state / NODE_FILE).stat().st_mtime >= started
    except OSError:
        return None
    if not fresh:
        return None
    tls = None
    if not node.insecure:
        files = dev_client_files(state)
        if not files.exist():
            return None
        tls = files.read()
    config = ConnectConfig(target=node.address, tls=tls, call_timeout=call_timeout)
    try:
        async with AsyncClient(config) as client:
            await client.node_info(call_timeout=min(2.0, call_timeout))
    except KodoclientError:
        return None
    return config, node.node_id


async def _stop(process: asyncio.subprocess.Process, stop_timeout: float) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), stop_timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
