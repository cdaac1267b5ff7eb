"""One contract for both ledger stores (memory and SQLite): what each must keep alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from kodosumi.settlement import EXPIRED, OPEN, RELEASED, SETTLED, Balance, Entry, Hold
from registryd.ledger.memory_store import MemoryLedgerStore
from registryd.ledger.model import Budget
from registryd.ledger.sqlite_store import SqliteLedgerStore
from registryd.ledger.store import LedgerStore

BIG = 10**26 + 7  # past SQLite's 64-bit integers: amounts are kept as text


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    if request.param == "memory":
        yield MemoryLedgerStore()
        return
    sqlite = await SqliteLedgerStore.open(tmp_path / "registry.sqlite")
    yield sqlite
    await sqlite.close()


def _grant(account: str, units: int, key: str = "", currency: str = "EUR") -> Entry:
    return Entry(0, "grant", "system/credit", account, currency, units, 1.0, "root", key=key)


def _hold(key: str, units: int, charges: tuple[tuple[str, str], ...] = ()) -> Hold:
    return Hold(
        f"h-{key}",
        "node/n1",
        key,
        "user/alice",
        "node/n1",
        "EUR",
        units,
        10.0,
        100.0,
        charges=charges,
    )


async def test_entries_move_both_legs_and_keep_big_amounts(store: LedgerStore) -> None:
    first = await store.add_entry(_grant("user/alice", BIG, key="k1"))
    second = await store.add_entry(_grant("user/bob", 5, currency="USDC"))
    assert (first.entry_id, second.entry_id) == (1, 2)
    assert await store.balance("user/alice", "EUR") == Balance("user/alice", "EUR", BIG, 0)
    assert await store.balance("system/credit", "EUR") == Balance("system/credit", "EUR", -BIG)
    assert await store.balance("user/nobody", "EUR") == Balance("user/nobody", "EUR", 0, 0)
    assert sum(b.units for b in await store.balances() if b.currency == "EUR") == 0
    assert [b.account for b in await store.balances()] == [
        "system/credit",
        "system/credit",
        "user/alice",
        "user/bob",
    ]
    assert await store.entry_by_key("k1") == first
    assert await store.entry_by_key("nope") is None


async def test_history_is_newest_first_and_pages(store: LedgerStore) -> None:
    for units in (1, 2, 3):
        await store.add_entry(_grant("user/alice", units))
    await store.add_entry(_grant("user/alice", 4, currency="USD"))
    await store.add_entry(_grant("user/bob", 9))
    assert [e.units for e in await store.entries("user/alice")] == [4, 3, 2, 1]
    assert [e.units for e in await store.entries("user/alice", "EUR", limit=2)] == [3, 2]
    assert [e.units for e in await store.entries("user/alice", before=3)] == [2, 1]
    assert len(await store.entries("system/credit")) == 5


async def test_a_hold_counts_until_it_is_closed(store: LedgerStore) -> None:
    await store.add_entry(_grant("user/alice", 100))
    charges = (("user/alice", "month:2026-12"), ("group/ml", "month:2026-12"))
    await store.add_hold(_hold("a", 30, charges))
    await store.add_hold(_hold("b", 20, charges))
    assert (await store.balance("user/alice", "EUR")).available_units == 50
    assert await store.budget_use("group/ml", "month:2026-12", "EUR") == 50
    hold = await store.get_hold("node/n1", "a")
    assert hold is not None and hold.state == OPEN and hold.charges == charges
    assert await store.get_hold("node/n2", "a") is None  # keys are the holder's own

    settle = Entry(
        0,
        "settle",
        "user/alice",
        "node/n1",
        "EUR",
        25,
        20.0,
        "node/n1",
        hold_id="h-a",
        receipt_id="r-1",
    )
    closed, posted = await store.close_hold(hold, SETTLED, 20.0, 25, "r-1", settle)
    assert closed.state == SETTLED and closed.settled_units == 25 and closed.receipt_id == "r-1"
    assert posted is not None and posted.entry_id == 2
    assert await store.balance("user/alice", "EUR") == Balance("user/alice", "EUR", 75, 20)
    assert (await store.balance("node/n1", "EUR")).units == 25
    # Settled amounts stay counted against budgets; the unspent rest is freed.
    assert await store.budget_use("user/alice", "month:2026-12", "EUR") == 45
    assert await store.hold_by_receipt("r-1") == closed
    assert await store.entry_of_hold("h-a") == posted
    assert await store.get_hold("node/n1", "a") == closed

    other = await store.get_hold("node/n1", "b")
    assert other is not None
    assert await store.expiring_holds(99.0) == []
    assert await store.expiring_holds(100.0) == [other]
    released, none = await store.close_hold(other, RELEASED, 30.0)
    assert released.state == RELEASED and none is None
    assert await store.budget_use("group/ml", "month:2026-12", "EUR") == 25
    assert (await store.balance("user/alice", "EUR")).held_units == 0
    assert await store.expiring_holds(1000.0) == []


async def test_holds_of_an_account_newest_first(store: LedgerStore) -> None:
    for i, key in enumerate(("a", "b", "c")):
        await store.add_hold(replace(_hold(key, 1), created_at=10.0 + i))
    assert [h.key for h in await store.holds("user/alice")] == ["c", "b", "a"]
    b = await store.hold_by_id("h-b")
    assert b is not None and b.key == "b"
    assert await store.hold_by_id("h-nope") is None
    await store.close_hold(b, RELEASED, 50.0)
    assert [h.key for h in await store.holds("user/alice")] == ["c", "a"]
    assert [h.key for h in await store.holds("user/alice", open_only=False, limit=2)] == ["c", "b"]
    assert await store.holds("user/bob") == []


async def test_closing_a_hold_twice_is_refused(store: LedgerStore) -> None:
    await store.add_hold(_hold("c", 5))
    hold = await store.get_hold("node/n1", "c")
    assert hold is not None
    await store.close_hold(hold, EXPIRED, 100.0)
    with pytest.raises((AssertionError, RuntimeError)):
        await store.close_hold(hold, RELEASED, 101.0)
    assert (await store.balance("user/alice", "EUR")).held_units == 0


async def test_budgets(store: LedgerStore) -> None:
    await store.put_budget(Budget("user/alice", "EUR", "month", 10, 1.0, "root"))
    await store.put_budget(Budget("group/ml", "EUR", "day", BIG, 1.0, "root"))
    await store.put_budget(Budget("user/alice", "EUR", "month", 12, 2.0, "root"))  # replaces
    assert await store.budgets() == [
        Budget("group/ml", "EUR", "day", BIG, 1.0, "root"),
        Budget("user/alice", "EUR", "month", 12, 2.0, "root"),
    ]
    assert [b.subject for b in await store.budgets(("user/alice", "user/bob"))] == ["user/alice"]
    assert await store.delete_budget("user/alice", "EUR", "month")
    assert not await store.delete_budget("user/alice", "EUR", "month")
    assert len(await store.budgets()) == 1
