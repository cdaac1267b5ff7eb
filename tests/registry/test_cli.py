"""`python -m registryd` as a real process: it serves with a development CA, writes
registry.json, stops gracefully on SIGTERM, and reports unusable configuration by exit code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsFiles
from kodosumi.v1 import registry_pb2 as pb
from kodosumi.v1 import registry_pb2_grpc
from registryd.cli import ExitCode
from tests.registry.helpers import eventually

REPO = Path(__file__).resolve().parents[2]


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "registryd",
        *args,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_registryd_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "registry"
    process = await spawn("--state-dir", str(state), "--listen", "127.0.0.1:0")
    address_file = state / "registry.json"
    try:

        async def serving() -> bool:
            assert process.returncode is None, await process.stdout.read()  # type: ignore[union-attr]
            return address_file.is_file()

        await eventually(serving, within=30)
        info = json.loads(address_file.read_text())
        assert info["pid"] == process.pid
        assert info["identity"] == "spiffe://local.kodosumi/registry/registry"
        client = TlsFiles(
            Path(info["ca_cert"]), Path(info["client_cert"]), Path(info["client_key"])
        )
        async with open_channel(
            info["address"], client.read(), expect=ServerExpectation.registry()
        ) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            listing = await registry_pb2_grpc.RegistryServiceStub(channel).ListNodes(
                pb.ListNodesRequest(), timeout=10
            )
            assert list(listing.nodes) == []
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == ExitCode.OK
        assert not address_file.exists()
        assert (state / "registry.sqlite").is_file()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_unusable_configuration_exits_with_the_config_code(tmp_path: Path) -> None:
    config = tmp_path / "registry.toml"
    config.write_text("[lease]\nttl = 3\n")
    process = await spawn("--config", str(config), "--state-dir", str(tmp_path / "s"))
    async with asyncio.timeout(30):
        output, _ = await process.communicate()
    assert process.returncode == ExitCode.CONFIG
    assert b"unknown key 'ttl'" in output
