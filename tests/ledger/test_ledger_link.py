"""The node's side of settlement (`kodosumid/network/ledger_link.py`) over the ledger's
domain: a quoted launch reserves its ceiling (refused when the budget cannot cover it),
a receipt settles it once, a receipt the ledger cannot take now is retried until posted,
and a priced run without a quote is charged after the fact when the buyer can pay."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from decimal import Decimal

import pytest

from kodosumi.authz import NODE, USER, Principal
from kodosumi.clock import ManualClock
from kodosumi.errors import PermissionDenied, Unavailable
from kodosumi.pricing import Price
from kodosumi.settlement import (
    Balance,
    BudgetExhausted,
    Hold,
    Settled,
    parse_amount,
)
from kodosumi.spiffe import SpiffeId
from kodosumid.network.backoff import TimeSource
from kodosumid.network.ledger_link import LedgerLink
from registryd.ledger.ledger import Ledger
from registryd.ledger.memory_store import MemoryLedgerStore

DOMAIN = "test.kodosumi"
ALICE = Principal(SpiffeId.user(DOMAIN, "alice"), frozenset({USER}))


class DomainSettlement:
    """`Settlement` straight over the ledger's domain, as node `n1` (no gRPC)."""

    def __init__(self, ledger: Ledger, holder: str = "node/n1") -> None:
        self.ledger, self.holder = ledger, holder
        self.down = False

    def _up(self) -> None:
        if self.down:
            raise Unavailable("registry away", reason="LEDGER_UNAVAILABLE")

    async def reserve(
        self, account: str, amount: Decimal, currency: str, key: str, ttl_seconds: float = 0.0
    ) -> Hold:
        self._up()
        units = parse_amount(format(amount, "f"), "amount", positive=True)
        return await self.ledger.reserve(self.holder, account, units, currency, key, ttl_seconds)

    async def settle(self, key: str, amount: Decimal, currency: str, receipt_id: str) -> Settled:
        self._up()
        units = parse_amount(format(amount, "f"), "amount")
        return await self.ledger.settle(self.holder, key, units, currency, receipt_id)

    async def release(self, key: str) -> Hold:
        return await self.ledger.release(self.holder, key)

    async def get_hold(self, key: str) -> Hold:
        return await self.ledger.get_hold(self.holder, key)

    async def open_holds(self) -> list[Hold]:
        self._up()
        return await self.ledger.holds_of(self.holder, by_holder=True)

    async def balances(self, account: str = "") -> list[Balance]:
        return await self.ledger.balances(account or self.holder)


@dataclass(frozen=True)
class Limits:
    max_seconds: Decimal = Decimal(60)


EUR_PER_RUN = Price("EUR", per_run=Decimal(1))
SIXTY_SECONDS = Limits()


@dataclass(frozen=True)
class Terms:
    ceiling: Decimal
    price: Price | None = EUR_PER_RUN
    limits: Limits = SIXTY_SECONDS


@dataclass(frozen=True)
class Stored:
    receipt_id: str
    execution_id: str
    owner: str = str(SpiffeId.user(DOMAIN, "alice"))


@dataclass(frozen=True)
class Receipt:
    stored: Stored
    amount: Decimal
    currency: str = "EUR"


async def _link() -> tuple[LedgerLink, DomainSettlement, Ledger]:
    ledger = Ledger(MemoryLedgerStore(), ManualClock())
    await ledger.grant("root", "user/alice", 10 * 10**9, "EUR")
    backend = DomainSettlement(ledger)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    return LedgerLink(backend, time=TimeSource(sleep=no_wait)), backend, ledger


async def _balances(ledger: Ledger) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        b.account: (Decimal(b.units) / 10**9, Decimal(b.held_units) / 10**9)
        for b in await ledger.store.balances()
    }


async def test_a_quoted_run_is_held_then_settled_once() -> None:
    link, _, ledger = await _link()
    await link.reserve(ALICE, Terms(Decimal(3)), "exec-1")
    assert (await _balances(ledger))["user/alice"] == (10, 3)
    receipt = Receipt(Stored("r-1", "exec-1"), Decimal("1.5"))
    await link.settle(receipt)
    await link.settle(receipt)  # a sink called twice posts once
    books = await _balances(ledger)
    assert books["user/alice"] == (Decimal("8.5"), 0) and books["node/n1"] == (Decimal("1.5"), 0)
    # A free quote holds nothing; a failed run's zero receipt frees its hold.
    await link.reserve(ALICE, Terms(Decimal(0)), "exec-free")
    await link.reserve(ALICE, Terms(Decimal(2)), "exec-2")
    await link.settle(Receipt(Stored("r-2", "exec-2"), Decimal(0)))
    assert (await _balances(ledger))["user/alice"] == (Decimal("8.5"), 0)


async def test_the_budget_refuses_the_launch() -> None:
    link, _, ledger = await _link()
    await ledger.set_budget("root", "user/alice", "EUR", "month", 5 * 10**9)
    await link.reserve(ALICE, Terms(Decimal(4)), "a")
    with pytest.raises(BudgetExhausted):
        await link.reserve(ALICE, Terms(Decimal(2)), "b")
    node = Principal(SpiffeId.node(DOMAIN, "peer"), frozenset({NODE}))
    with pytest.raises(PermissionDenied):
        await link.reserve(node, Terms(Decimal(1)), "c")


async def test_a_receipt_waits_for_the_ledger_and_is_posted_once_it_is_back() -> None:
    link, backend, ledger = await _link()
    await link.reserve(ALICE, Terms(Decimal(3)), "exec-1")
    backend.down = True
    await link.settle(Receipt(Stored("r-1", "exec-1"), Decimal(2)))
    assert list(link.pending) == ["r-1"]
    retrying = asyncio.get_running_loop().create_task(link.run())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert list(link.pending) == ["r-1"]  # still away: kept
        backend.down = False
        async with asyncio.timeout(5):
            while link.pending:  # noqa: ASYNC110 - polled with a deadline, as the tests do
                await asyncio.sleep(0.01)
    finally:
        retrying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retrying
    assert (await _balances(ledger))["node/n1"] == (2, 0)


async def test_a_priced_run_without_a_quote_is_charged_when_the_buyer_can_pay() -> None:
    link, _, ledger = await _link()
    await link.settle(Receipt(Stored("r-1", "exec-1"), Decimal(4)))
    await link.settle(Receipt(Stored("r-2", "exec-2"), Decimal(40)))  # more than she has
    books = await _balances(ledger)
    assert books["user/alice"] == (6, 0) and books["node/n1"] == (4, 0)


async def test_after_a_restart_the_ended_runs_holds_are_settled() -> None:
    link, backend, ledger = await _link()
    await link.reserve(ALICE, Terms(Decimal(3)), "ended")
    await link.reserve(ALICE, Terms(Decimal(2)), "running")
    backend.down = True
    await link.settle(Receipt(Stored("r-ended", "ended"), Decimal(1)))  # lost with the stop
    backend.down = False
    receipts = {"ended": Receipt(Stored("r-ended", "ended"), Decimal(1))}

    async def receipt_of(execution_id: str) -> Receipt | None:
        return receipts.get(execution_id)

    restarted = LedgerLink(backend, receipt_of=receipt_of)
    assert await restarted.recover() == 1
    assert await restarted.recover() == 0
    books = await _balances(ledger)
    assert books["user/alice"] == (9, 2) and books["node/n1"] == (1, 0)
