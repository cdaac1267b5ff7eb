"""Budgets and settlement over the real stack: a registry with its auth provider and ledger,
a node enrolled with it running priced flows on Ray, users with certificates of the trust
domain. A quoted launch holds its ceiling of the caller's funds; 50 concurrent quoted
launches against a budget for 10 start exactly 10 (the rest RESOURCE_EXHAUSTED,
BUDGET_EXHAUSTED with a QuotaFailure); each receipt is settled from the user to the node's
operator account, a cancelled run for what its receipt says; a user without funds is refused
INSUFFICIENT_FUNDS and a launch without enough budget starts nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kodosumi.authz import Principal
from kodosumi.enrollment import EnrollmentToken, enroll
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.pricing import price_from_mapping
from kodosumi.rpc.channel import open_channel
from kodosumi.rpc.status import details_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import (
    flow_pb2,
    flow_pb2_grpc,
    ledger_pb2,
    ledger_pb2_grpc,
    quote_pb2,
    quote_pb2_grpc,
)
from kodosumid.app import NodeApp
from kodosumid.auth.identity import join
from kodosumid.config import DiscoveryConfig, FlowEntry, PoolConfig
from kodosumid.quotas import Limits, QuotasConfig
from registryd.clock import ManualClock
from registryd.config import AuthConfig
from registryd.daemon import RegistryDaemon
from tests.auth.conftest import ADMIN, DOMAIN
from tests.node.conftest import node_config
from tests.node.helpers import collect, eventually
from tests.registry.conftest import make_pki, registry_config

NODE_ID = "seller"
FLOWS = (
    FlowEntry(
        "priced-hello",
        "tests.flowlib:hello",
        input_schema={"type": "object", "properties": {"name": {"type": "string"}}},
        price=price_from_mapping({"currency": "EUR", "per_run": "1"}, "price"),
    ),
    FlowEntry(
        "priced-sleepy",
        "tests.flowlib:sleepy",
        price=price_from_mapping({"currency": "EUR", "per_second": "0.5"}, "price"),
        timeout_seconds=60,
    ),
)


@dataclass
class Market:
    registry: RegistryDaemon
    node: NodeApp
    admin: TlsMaterial
    users: dict[str, TlsMaterial]
    channels: list[grpc.aio.Channel]

    def _channel(self, address: str, tls: TlsMaterial, expect: ServerExpectation) -> Any:
        channel = open_channel(address, tls, expect=expect)
        self.channels.append(channel)
        return channel

    def ledger(self, tls: TlsMaterial) -> Any:
        channel = self._channel(self.registry.address, tls, ServerExpectation.registry())
        return ledger_pb2_grpc.LedgerServiceStub(channel)

    def flows(self, user: str) -> Any:
        channel = self._channel(self.node.address, self.users[user], ServerExpectation.node())
        return flow_pb2_grpc.FlowServiceStub(channel), quote_pb2_grpc.QuoteServiceStub(channel)


@pytest.fixture(scope="module")
async def market(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Market]:
    base = tmp_path_factory.mktemp("ledger-market")
    pki = make_pki(base / "pki", DOMAIN)
    config = replace(registry_config(base / "registry", pki), auth=AuthConfig(admins=(ADMIN,)))
    registry = RegistryDaemon(config, clock=ManualClock(time.time()), run_sweeper=False)
    await registry.start()
    assert registry.auth is not None
    admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin", "user"}))
    node: NodeApp | None = None
    found: Market | None = None
    try:
        token, _ = await registry.auth.provider.create_token(admin, SpiffeId.node(DOMAIN, NODE_ID))
        conf = node_config(
            base / NODE_ID,
            node_id="",
            flows=FLOWS,
            discovery=DiscoveryConfig(enabled=False),
            pool=PoolConfig(shared_executors=1, warm_executors=0, preload_modules=()),
            # The budget, not the node's quotas, is what the 50 launches race for.
            quotas=QuotasConfig(defaults=Limits(concurrent_executions=0, launches_per_minute=0)),
        )
        node = NodeApp(await join(conf, token))
        await node.start()
        users = {}
        for name in ("alice", "bob", "carol"):
            _, user_token = await registry.auth.provider.create_user(admin, name)
            users[name] = (await enroll(EnrollmentToken.decode(user_token))).material
        found = Market(registry, node, pki.user(ADMIN), users, [])
        yield found
    finally:
        if found is not None:
            for channel in found.channels:
                await channel.close()
        if node is not None:
            await node.stop()
        await registry.stop(grace=0)


async def _quote(quotes: Any, flow: str, inputs: dict[str, Any], **limits: Any) -> str:
    response = await quotes.RequestQuote(
        quote_pb2.RequestQuoteRequest(
            flow=flow, inputs=dict_to_struct(inputs), limits=quote_pb2.QuoteLimits(**limits)
        ),
        timeout=30,
    )
    return str(response.quote.quote_id)


async def _launch(flows: Any, flow: str, inputs: dict[str, Any], quote_id: str) -> str:
    response = await flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(
            flow=flow, inputs=dict_to_struct(inputs), quote_id=quote_id
        ),
        timeout=30,
    )
    return str(response.execution.execution_id)


def _quota_failure(error: grpc.aio.AioRpcError) -> error_details_pb2.QuotaFailure:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                    failure = error_details_pb2.QuotaFailure()
                    detail.Unpack(failure)
                    return failure
    raise AssertionError("no QuotaFailure")


async def _balance(ledger: Any, account: str) -> tuple[Decimal, Decimal]:
    response = await ledger.GetBalance(ledger_pb2.GetBalanceRequest(account=account), timeout=10)
    eur = [b for b in response.balances if b.currency == "EUR"]
    return (Decimal(eur[0].balance), Decimal(eur[0].held)) if eur else (Decimal(0), Decimal(0))


async def test_fifty_concurrent_quoted_launches_against_a_budget_for_ten(market: Market) -> None:
    admin = market.ledger(market.admin)
    await admin.GrantCredit(
        ledger_pb2.GrantCreditRequest(account="alice", amount="100", currency="EUR"), timeout=10
    )
    await admin.SetBudget(
        ledger_pb2.SetBudgetRequest(subject="alice", amount="10", currency="EUR", period="month"),
        timeout=10,
    )
    flows, quotes = market.flows("alice")
    inputs = {"name": "alice"}
    quote_ids = [await _quote(quotes, "priced-hello", inputs) for _ in range(50)]

    async def attempt(quote_id: str) -> str:
        try:
            return await _launch(flows, "priced-hello", inputs, quote_id)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            assert details_of(e)[0] == "BUDGET_EXHAUSTED", e
            [violation] = _quota_failure(e).violations
            assert (violation.subject, violation.quota_id) == ("user/alice", "budget_month_EUR")
            return ""

    launched = [x for x in await asyncio.gather(*(attempt(q) for q in quote_ids)) if x]
    assert len(launched) == 10
    for execution_id in launched:
        await collect(flows, execution_id)
    # Each receipt (1 EUR per run) is settled from alice to the node's operator account.
    ledger = market.ledger(market.admin)

    async def settled() -> bool:
        return await _balance(ledger, "alice") == (Decimal(90), Decimal(0))

    await eventually(settled, timeout=60)
    assert await _balance(ledger, f"node/{NODE_ID}") == (Decimal(10), Decimal(0))
    entries = await market.ledger(market.users["alice"]).ListEntries(
        ledger_pb2.ListEntriesRequest(), timeout=10
    )
    settlements = [e for e in entries.entries if e.kind == "settle"]
    assert len(settlements) == 10 and all(e.credit == f"node/{NODE_ID}" for e in settlements)
    # The budget is used up: the next quoted launch starts nothing.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _launch(flows, "priced-hello", inputs, await _quote(quotes, "priced-hello", inputs))
    assert details_of(info.value)[0] == "BUDGET_EXHAUSTED"


async def test_a_cancelled_run_pays_what_its_receipt_says(market: Market) -> None:
    admin = market.ledger(market.admin)
    await admin.GrantCredit(
        ledger_pb2.GrantCreditRequest(account="carol", amount="100", currency="EUR"), timeout=10
    )
    flows, quotes = market.flows("carol")
    inputs = {"seconds": 30}
    quote_id = await _quote(quotes, "priced-sleepy", inputs, max_seconds=40)
    execution_id = await _launch(flows, "priced-sleepy", inputs, quote_id)
    ledger = market.ledger(market.admin)
    balance, held = await _balance(ledger, "carol")
    assert (balance, held) == (Decimal(100), Decimal(20))  # 40 s at 0.5 EUR: the ceiling
    await flows.CancelExecution(
        flow_pb2.CancelExecutionRequest(execution_id=execution_id), timeout=10
    )
    await collect(flows, execution_id)

    async def receipt() -> Any:
        try:
            got = await quotes.GetReceipt(
                quote_pb2.GetReceiptRequest(execution_id=execution_id), timeout=10
            )
        except grpc.aio.AioRpcError:
            return None
        return got.receipt

    async def issued() -> bool:
        return await receipt() is not None

    await eventually(issued, timeout=60)
    charged = Decimal((await receipt()).amount)
    assert charged < 20

    async def settled() -> bool:
        return await _balance(ledger, "carol") == (100 - charged, Decimal(0))

    await eventually(settled, timeout=60)


async def test_a_user_without_funds_is_refused_and_nothing_runs(market: Market) -> None:
    flows, quotes = market.flows("bob")
    inputs = {"name": "bob"}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _launch(flows, "priced-hello", inputs, await _quote(quotes, "priced-hello", inputs))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(info.value)[0] == "INSUFFICIENT_FUNDS"
    listed = await flows.ListExecutions(flow_pb2.ListExecutionsRequest(), timeout=10)
    assert list(listed.executions) == []
