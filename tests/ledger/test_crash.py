"""The ledger across registry crashes: a real `registryd` process killed between a
reservation and its settlement (SIGKILL), and while it posts a settlement (before and after
the commit, at named crash points). After each restart the seller replays its settlements;
every receipt is posted exactly once and the books still sum to zero."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.v1 import ledger_pb2 as pb
from kodosumi.v1 import ledger_pb2_grpc
from tests.registry.conftest import Pki, make_pki
from tests.registry.helpers import eventually

REPO = Path(__file__).resolve().parents[2]


class Registry:
    """One `registryd` process over a state directory that outlives it."""

    def __init__(self, tmp_path: Path, pki: Pki) -> None:
        self.state = tmp_path / "registry"
        self.config = tmp_path / "registry.toml"
        self.config.write_text(
            f'registry_id = "test-registry"\nlisten = "127.0.0.1:0"\n'
            f'[tls]\nca_cert = "{pki.ca_cert}"\nca_key = "{pki.ca_key}"\n'
            '[auth]\nadmins = ["root"]\n'
        )
        self.pki = pki
        self.process: asyncio.subprocess.Process | None = None
        self.address = ""
        self.channels: list[grpc.aio.Channel] = []

    async def start(self, crash_at: str = "") -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("KODOSUMI_LEDGER_CRASH_AT", None)
        if crash_at:
            env["KODOSUMI_LEDGER_CRASH_AT"] = crash_at
        address_file = self.state / "registry.json"
        address_file.unlink(missing_ok=True)
        self.process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "registryd",
            "--config",
            str(self.config),
            "--state-dir",
            str(self.state),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def serving() -> bool:
            assert process.returncode is None, "registryd exited"
            return address_file.is_file()

        await eventually(serving, within=60)
        self.address = json.loads(address_file.read_text())["address"]

    def stub(self, who: str) -> Any:
        kind, _, name = who.partition("/")
        tls = self.pki.node(name) if kind == "node" else self.pki.user(name)
        channel = open_channel(self.address, tls, expect=ServerExpectation.registry())
        self.channels.append(channel)
        return ledger_pb2_grpc.LedgerServiceStub(channel)

    async def crashed(self) -> int:
        assert self.process is not None
        async with asyncio.timeout(30):
            return await self.process.wait()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        for channel in self.channels:
            await channel.close()
        self.channels.clear()


def _settle(key: str, amount: str) -> pb.SettleRequest:
    return pb.SettleRequest(key=key, amount=amount, currency="EUR", receipt_id=f"receipt-{key}")


async def test_settlements_survive_registry_crashes_without_double_posting(
    tmp_path: Path,
) -> None:
    registry = Registry(tmp_path, make_pki(tmp_path / "pki"))
    try:
        # Crash right after a settlement committed, before it was answered.
        await registry.start(crash_at="settle_after_commit:1")
        admin, node = registry.stub("user/root"), registry.stub("node/n1")
        await admin.GrantCredit(pb.GrantCreditRequest(account="alice", amount="10", currency="EUR"))
        for key, amount in (("run-1", "2"), ("run-2", "3")):
            await node.Reserve(
                pb.ReserveRequest(account="alice", amount=amount, currency="EUR", key=key)
            )
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await node.Settle(_settle("run-1", "1.5"), timeout=10)
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await registry.crashed() == 86
        await registry.kill()

        # Crash while posting: the rows are written, not committed.
        await registry.start(crash_at="settle_before_commit:1")
        node = registry.stub("node/n1")
        with pytest.raises(grpc.aio.AioRpcError):
            await node.Settle(_settle("run-2", "3"), timeout=10)
        assert await registry.crashed() == 86
        await registry.kill()

        # SIGKILL between a reservation and its settlement.
        await registry.start()
        node = registry.stub("node/n1")
        await node.Reserve(
            pb.ReserveRequest(account="alice", amount="1", currency="EUR", key="run-3")
        )
        await registry.kill()

        await registry.start()
        node, alice = registry.stub("node/n1"), registry.stub("user/alice")
        first = await node.Settle(_settle("run-1", "1.5"))
        assert first.replayed  # it was committed before the crash: not posted again
        second = await node.Settle(_settle("run-2", "3"))
        assert not second.replayed  # rolled back by the crash: posted now, once
        third = await node.Settle(_settle("run-3", "0.25"))
        assert not third.replayed
        for key, amount in (("run-1", "1.5"), ("run-2", "3"), ("run-3", "0.25")):
            assert (await node.Settle(_settle(key, amount))).replayed
        entries = (await alice.ListEntries(pb.ListEntriesRequest())).entries
        assert sorted((e.kind, e.amount) for e in entries) == [
            ("grant", "10"),
            ("settle", "0.25"),
            ("settle", "1.5"),
            ("settle", "3"),
        ]
        [mine] = (await alice.GetBalance(pb.GetBalanceRequest())).balances
        assert (mine.balance, mine.held) == ("5.25", "0")
        [paid] = (await node.GetBalance(pb.GetBalanceRequest())).balances
        assert paid.balance == "4.75"
    finally:
        await registry.kill()
