"""The local ledger as the payment backend over the real stack (the registry's ledger, a node
on Ray, kodogate as a subprocess): a purchaser's API key names the account that pays; the
price is held before the run, settled to the gateway's account after it, and released when
the run fails; a buyer who cannot pay gets 402 and nothing runs."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from kodosumi.ledger_client import LedgerClient, LedgerTarget
from kodosumi.settlement import from_units
from kodosumi.v1 import ledger_pb2
from tests.gateway.stack import ADMIN, GATEWAY_ID, Stack, wait_status

ALICE_KEY = "alice-api-key"
BOB_KEY = "bob-api-key"
PRICE = {"amount": "2.5", "currency": "EUR"}
SERVICES = [
    {"path": "hello", "flow": "hello", "price": PRICE},
    {"path": "fails", "flow": "fails", "price": PRICE},
]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
async def stack(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    stack = Stack(Path(tmp_path_factory.mktemp("gateway-ledger")))
    await stack.start_daemons()
    await stack.enroll_gateway()
    assert stack.registry is not None
    purchasers = {digest(ALICE_KEY): "user/alice", digest(BOB_KEY): "user/bob"}
    path = stack.write_config(
        SERVICES,
        payments={"backend": "ledger", "poll_interval_seconds": 0.1},
        ledger={"registry": stack.registry.address, "purchasers": purchasers},
    )
    admin = LedgerClient(LedgerTarget(stack.registry.address, stack.pki.user(ADMIN)))
    try:
        await admin.call(
            "GrantCredit",
            ledger_pb2.GrantCreditRequest(account="user/alice", amount="10", currency="EUR"),
        )
    finally:
        await admin.close()
    await asyncio.to_thread(stack.start_gateway, path)
    yield stack
    await stack.stop()


async def balances(stack: Stack) -> dict[str, tuple[Decimal, Decimal]]:
    assert stack.registry is not None
    admin = LedgerClient(LedgerTarget(stack.registry.address, stack.pki.user(ADMIN)))
    try:
        found = {}
        for account in ("user/alice", f"gateway/{GATEWAY_ID}"):
            for b in await admin.balances(account):
                found[account] = (from_units(b.units), from_units(b.held_units))
        return found
    finally:
        await admin.close()


async def test_a_run_is_held_then_settled_to_the_gateway(stack: Stack) -> None:
    async with stack.client() as http:
        body = {"identifier_from_purchaser": "order-1", "input_data": {"name": "Ada"}}
        anonymous = await http.post("/hello/start_job", json=body)
        assert anonymous.status_code == 401
        started = await http.post("/hello/start_job", json=body, headers={"token": ALICE_KEY})
        assert started.status_code == 200, started.text
        assert started.json()["amounts"] == [{"amount": "2.5", "unit": "EUR"}]
        done = await wait_status(http, "/hello", started.json()["id"], {"completed", "failed"})
        assert done["status"] == "completed"
    for _ in range(100):
        found = await balances(stack)
        if found.get(f"gateway/{GATEWAY_ID}", (0, 0))[0] == Decimal("2.5"):
            break
        await asyncio.sleep(0.1)
    assert found["user/alice"] == (Decimal("7.5"), Decimal(0))
    assert found[f"gateway/{GATEWAY_ID}"][0] == Decimal("2.5")


async def test_a_failed_run_releases_the_hold(stack: Stack) -> None:
    before = await balances(stack)
    async with stack.client() as http:
        body = {"identifier_from_purchaser": "order-2"}
        started = await http.post("/fails/start_job", json=body, headers={"token": ALICE_KEY})
        done = await wait_status(http, "/fails", started.json()["id"], {"completed", "failed"})
        assert done["status"] == "failed"
    for _ in range(100):
        after = await balances(stack)
        if after["user/alice"][1] == 0:
            break
        await asyncio.sleep(0.1)
    assert after["user/alice"] == before["user/alice"]


async def test_a_buyer_who_cannot_pay_gets_402_and_nothing_runs(stack: Stack) -> None:
    async with stack.client() as http:
        body = {"identifier_from_purchaser": "order-3", "input_data": {"name": "Bob"}}
        refused = await http.post("/hello/start_job", json=body, headers={"token": BOB_KEY})
        assert refused.status_code == 402, refused.text
