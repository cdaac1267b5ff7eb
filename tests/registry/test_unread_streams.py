"""Hostile watchers of the registry (issue 11): streams that never read cost registryd (a
process of its own, measured from /proc) a bounded amount, however large what they watch.

- `WatchRegistry` over a change log of large flow specs (schemas of 200 KB): pages are cut
  by bytes, so an unread stream holds one small page, not 64 changes (13 MB a page before).
- `WatchAuthState` over a large revocation list: one snapshot, shared by every follower and
  coalesced while a follower does not read.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, auth_pb2_grpc, flow_pb2, registry_pb2_grpc
from kodosumi.v1 import registry_pb2 as pb
from tests.memory import peak_rss, settled_rss
from tests.registry.conftest import Pki, make_pki
from tests.registry.helpers import DOMAIN, register_request

REPO = Path(__file__).resolve().parents[2]
NODES, FLOWS_PER_NODE, SCHEMA_BYTES = 12, 12, 200_000  # ~29 MB of flow specs in the log
WATCHERS = 40
MAX_GROWTH = 100 * 1024 * 1024


@dataclass
class Registryd:
    process: subprocess.Popen[bytes]
    address: str
    pki: Pki

    def channel(self, tls: TlsMaterial) -> grpc.aio.Channel:
        return open_channel(self.address, tls, expect=ServerExpectation.registry())


@pytest.fixture
def registryd(tmp_path: Path) -> Iterator[Registryd]:
    pki = make_pki(tmp_path / "pki")
    state = tmp_path / "registry"
    command = [sys.executable, "-m", "registryd", "--state-dir", str(state)]
    command += ["--listen", "127.0.0.1:0", "--registry-id", "test-registry", "--admin", "alice"]
    command += ["--ca-cert", str(pki.ca_cert), "--ca-key", str(pki.ca_key)]
    log = (tmp_path / "registryd.log").open("ab")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    info = state / "registry.json"
    deadline = time.monotonic() + 60
    while not info.exists():
        assert process.poll() is None, (tmp_path / "registryd.log").read_text()
        assert time.monotonic() < deadline, "registryd did not start within 60 s"
        time.sleep(0.05)
    try:
        yield Registryd(process, json.loads(info.read_text())["address"], pki)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _big_flow(index: int) -> flow_pb2.Flow:
    return flow_pb2.Flow(
        name=f"flow-{index}",
        entrypoint="flows.big:run",
        input_schema=dict_to_struct({"type": "object", "description": "x" * SCHEMA_BYTES}),
    )


async def _register_large_catalogs(reg: Registryd) -> None:
    for n in range(NODES):
        node_id = f"node-{n}"
        channel = reg.channel(reg.pki.node(node_id))
        try:
            flows = [_big_flow(i) for i in range(FLOWS_PER_NODE)]
            request = register_request(node_id, flows, interval=300)
            await registry_pb2_grpc.RegistryServiceStub(channel).RegisterNode(request, timeout=30)
        finally:
            await channel.close()


@dataclass
class Unread:
    channels: list[grpc.aio.Channel]
    calls: list[Any]

    async def close(self) -> None:
        for call in self.calls:
            call.cancel()
        for channel in self.channels:
            await channel.close()


async def _growth_with(reg: Registryd, open_streams: Any) -> tuple[int, Unread]:
    pid = reg.process.pid
    before = await settled_rss(pid)
    unread: Unread = await open_streams()
    peak = await peak_rss(pid, seconds=5.0)
    print(f"registryd RSS {before / 2**20:.0f} -> {peak / 2**20:.0f} MiB, {WATCHERS} streams")
    return peak - before, unread


@pytest.fixture
async def alice(registryd: Registryd) -> AsyncIterator[grpc.aio.Channel]:
    channel = registryd.channel(registryd.pki.user("alice"))
    yield channel
    await channel.close()


@pytest.mark.slow
async def test_unread_registry_watchers_cost_a_bounded_amount(
    registryd: Registryd, alice: grpc.aio.Channel
) -> None:
    await _register_large_catalogs(registryd)
    # Warm up: one full replay (it also checks that every page fits a client's limit).
    watch = registry_pb2_grpc.RegistryServiceStub(alice).WatchRegistry(
        pb.WatchRegistryRequest(after_revision=0), timeout=120
    )
    flows_seen, largest = 0, 0
    async for response in watch:
        largest = max(largest, response.ByteSize())
        flows_seen += sum(1 for c in response.changes if c.HasField("flow"))
        if flows_seen == NODES * FLOWS_PER_NODE:
            break
    watch.cancel()
    assert largest < 1024 * 1024, f"a response of {largest} bytes"

    async def open_streams() -> Unread:
        channels = [registryd.channel(registryd.pki.user(f"u{i}")) for i in range(4)]
        calls = []
        for i in range(WATCHERS):
            stub = registry_pb2_grpc.RegistryServiceStub(channels[i % 4])
            call = stub.WatchRegistry(pb.WatchRegistryRequest(after_revision=0), timeout=300)
            assert (await call.read()).created  # open, then never read again
            calls.append(call)
        return Unread(channels, calls)

    growth, unread = await _growth_with(registryd, open_streams)
    try:
        assert growth <= MAX_GROWTH, f"registryd grew {growth / 2**20:.0f} MiB"
        # A watcher that reads after all gets every change.
        seen = 0
        async for response in unread.calls[0]:
            seen += sum(1 for c in response.changes if c.HasField("flow"))
            if seen == NODES * FLOWS_PER_NODE:
                break
        assert seen == NODES * FLOWS_PER_NODE
    finally:
        await unread.close()


async def _revoke(stub: auth_pb2_grpc.AuthServiceStub, name: str) -> None:
    identity = f"spiffe://{DOMAIN}/user/{name}"
    await stub.Revoke(auth_pb2.RevokeRequest(identity=identity, reason="test"), timeout=30)


REVOKED = 3000


@pytest.mark.slow
async def test_unread_auth_state_watchers_cost_a_bounded_amount(
    registryd: Registryd, alice: grpc.aio.Channel
) -> None:
    admin = auth_pb2_grpc.AuthServiceStub(alice)
    names = [f"{i:05d}-" + "r" * 120 for i in range(REVOKED)]
    for start in range(0, REVOKED, 100):
        await asyncio.gather(*(_revoke(admin, n) for n in names[start : start + 100]))

    async def open_streams() -> Unread:
        channels = [registryd.channel(registryd.pki.node(f"n{i}")) for i in range(4)]
        calls = []
        for i in range(WATCHERS):
            stub = auth_pb2_grpc.AuthServiceStub(channels[i % 4])
            call = stub.WatchAuthState(auth_pb2.WatchAuthStateRequest(), timeout=300)
            calls.append(call)
        first = await calls[0].read()
        assert len(first.revoked_identities) == REVOKED
        # Changes while nobody reads: each stream holds at most the newest state.
        for extra in range(5):
            await _revoke(admin, f"late-{extra}")
        return Unread(channels, calls)

    growth, unread = await _growth_with(registryd, open_streams)
    try:
        assert growth <= MAX_GROWTH, f"registryd grew {growth / 2**20:.0f} MiB"
        latest = None
        while latest is None or len(latest.revoked_identities) < REVOKED + 5:
            latest = await asyncio.wait_for(unread.calls[1].read(), 30)
        assert len(latest.revoked_identities) == REVOKED + 5
    finally:
        await unread.close()
