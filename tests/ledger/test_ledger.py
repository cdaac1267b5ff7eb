"""The ledger's domain over the memory store: holds, settlements, budgets, replays, and what a
hostile seller tries. The property test drives random sequences of every operation and checks
after each step that balances sum to zero and nothing is overspent."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kodosumi.clock import ManualClock
from kodosumi.errors import InvalidArgument, KodosumiError
from kodosumi.settlement import (
    EXPIRED,
    SETTLED,
    BudgetExhausted,
    CurrencyMismatch,
    HoldClosed,
    HoldKeyReused,
    HoldNotFound,
    InsufficientFunds,
    ReceiptUsed,
    SettleExceedsHold,
)
from registryd.ledger.ledger import GrantKeyReused, Ledger
from registryd.ledger.memory_store import MemoryLedgerStore

ONE = 10**9
N1, N2 = "node/n1", "node/n2"
ALICE, BOB = "user/alice", "user/bob"


async def _groups(account: str) -> frozenset[str]:
    return frozenset({"ml"}) if account in (ALICE, BOB) else frozenset()


def _ledger(clock: ManualClock | None = None) -> Ledger:
    return Ledger(MemoryLedgerStore(), clock or ManualClock(), _groups)


async def test_reserve_settle_pays_the_seller_and_frees_the_rest() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, 10 * ONE, "EUR")
    hold = await ledger.reserve(N1, ALICE, 4 * ONE, "EUR", "exec-1")
    [alice] = await ledger.balances(ALICE)
    assert (alice.units, alice.held_units, alice.available_units) == (10 * ONE, 4 * ONE, 6 * ONE)
    assert hold.payee == N1
    done = await ledger.settle(N1, "exec-1", ONE, "EUR", "receipt-1")
    assert done.hold.state == SETTLED and done.entry is not None and not done.replayed
    assert done.entry.debit == ALICE and done.entry.credit == N1
    [alice] = await ledger.balances(ALICE)
    assert (alice.units, alice.held_units) == (9 * ONE, 0)
    assert [b.units for b in await ledger.balances(N1)] == [ONE]
    # One posting per receipt: a replay returns the first, nothing moves again.
    again = await ledger.settle(N1, "exec-1", ONE, "EUR", "receipt-1")
    assert again.replayed and again.entry == done.entry
    assert [b.units for b in await ledger.balances(N1)] == [ONE]
    assert [e.kind for e in await ledger.history(ALICE)] == ["settle", "grant"]


async def test_a_zero_receipt_closes_the_hold_without_a_posting() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, ONE, "EUR")
    await ledger.reserve(N1, ALICE, ONE, "EUR", "k")
    done = await ledger.settle(N1, "k", 0, "EUR", "r0")
    assert done.entry is None and done.hold.state == SETTLED
    assert (await ledger.balances(ALICE))[0].available_units == ONE


async def test_reserve_is_idempotent_by_the_sellers_key() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, 5 * ONE, "EUR")
    first = await ledger.reserve(N1, ALICE, 2 * ONE, "EUR", "k")
    assert await ledger.reserve(N1, ALICE, 2 * ONE, "EUR", "k") == first
    with pytest.raises(HoldKeyReused):
        await ledger.reserve(N1, ALICE, 3 * ONE, "EUR", "k")
    # Another seller's key of the same text is its own.
    other = await ledger.reserve(N2, ALICE, 2 * ONE, "EUR", "k")
    assert other.hold_id != first.hold_id
    assert (await ledger.balances(ALICE))[0].available_units == ONE


async def test_funds_and_budgets_refuse_what_they_cannot_cover() -> None:
    ledger = _ledger()
    with pytest.raises(InsufficientFunds):
        await ledger.reserve(N1, ALICE, ONE, "EUR", "k0")
    await ledger.grant("root", ALICE, 100 * ONE, "EUR")
    await ledger.grant("root", BOB, 100 * ONE, "EUR")
    await ledger.set_budget("root", ALICE, "EUR", "month", 10 * ONE)
    await ledger.set_budget("root", "group/ml", "EUR", "day", 15 * ONE)
    await ledger.reserve(N1, ALICE, 8 * ONE, "EUR", "a1")
    with pytest.raises(BudgetExhausted) as info:
        await ledger.reserve(N1, ALICE, 3 * ONE, "EUR", "a2")
    assert info.value.metadata["subject"] == ALICE
    assert info.value.metadata["remaining"] == "2"
    assert info.value.reason == "BUDGET_EXHAUSTED"
    # The group's budget counts what every member spends.
    await ledger.reserve(N1, BOB, 7 * ONE, "EUR", "b1")
    with pytest.raises(BudgetExhausted) as group:
        await ledger.reserve(N1, BOB, ONE, "EUR", "b2")
    assert group.value.subject == "group/ml"
    # Another currency has no budget.
    await ledger.grant("root", ALICE, ONE, "USD")
    await ledger.reserve(N1, ALICE, ONE, "USD", "u1")
    # A released hold frees the budget; a settled one counts what it paid.
    await ledger.release(N1, "b1")
    await ledger.settle(N1, "a1", 5 * ONE, "EUR", "r-a1")
    uses = {u.budget.subject: u for u in await ledger.budgets_of(None)}
    assert uses[ALICE].used_units == 5 * ONE and uses[ALICE].remaining_units == 5 * ONE
    assert uses["group/ml"].used_units == 5 * ONE


async def test_a_budget_set_mid_period_sees_what_was_spent_before() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, 100 * ONE, "EUR")
    await ledger.reserve(N1, ALICE, 6 * ONE, "EUR", "k")
    await ledger.settle(N1, "k", 6 * ONE, "EUR", "r")
    use = await ledger.set_budget("root", ALICE, "EUR", "day", 10 * ONE)
    assert use.used_units == 6 * ONE
    with pytest.raises(BudgetExhausted):
        await ledger.reserve(N1, ALICE, 5 * ONE, "EUR", "k2")


async def test_a_new_period_starts_afresh() -> None:
    clock = ManualClock(1_764_892_800.0)  # 2025-12-05 00:00 UTC
    ledger = _ledger(clock)
    await ledger.grant("root", ALICE, 100 * ONE, "EUR")
    await ledger.set_budget("root", ALICE, "EUR", "day", 2 * ONE)
    await ledger.reserve(N1, ALICE, 2 * ONE, "EUR", "d1")
    await ledger.settle(N1, "d1", 2 * ONE, "EUR", "r1")
    with pytest.raises(BudgetExhausted):
        await ledger.reserve(N1, ALICE, ONE, "EUR", "d2")
    clock.advance(86_400)
    await ledger.reserve(N1, ALICE, 2 * ONE, "EUR", "d2")


async def test_a_hold_lapses_at_its_expiry() -> None:
    clock = ManualClock()
    ledger = _ledger(clock)
    await ledger.grant("root", ALICE, 3 * ONE, "EUR")
    await ledger.reserve(N1, ALICE, 3 * ONE, "EUR", "k", ttl_seconds=60)
    clock.advance(60)
    assert (await ledger.balances(ALICE))[0].available_units == 3 * ONE
    with pytest.raises(HoldClosed) as info:
        await ledger.settle(N1, "k", ONE, "EUR", "late")
    assert info.value.reason == "HOLD_EXPIRED"
    assert (await ledger.get_hold(N1, "k")).state == EXPIRED
    assert (await ledger.release(N1, "k")).state == EXPIRED  # nothing left to release


# -- what a hostile seller (or a careless admin) tries ---------------------------------------


async def test_a_seller_settles_only_its_own_hold_and_at_most_its_amount() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, 10 * ONE, "EUR")
    await ledger.reserve(N1, ALICE, 2 * ONE, "EUR", "k")
    with pytest.raises(HoldNotFound):  # another node's hold: as if there were none
        await ledger.settle(N2, "k", ONE, "EUR", "r-steal")
    with pytest.raises(HoldNotFound):
        await ledger.release(N2, "k")
    with pytest.raises(SettleExceedsHold):
        await ledger.settle(N1, "k", 2 * ONE + 1, "EUR", "r-more")
    with pytest.raises(CurrencyMismatch):
        await ledger.settle(N1, "k", ONE, "USD", "r-usd")
    done = await ledger.settle(N1, "k", 2 * ONE, "EUR", "r1")
    assert done.entry is not None and done.entry.credit == N1
    with pytest.raises(HoldClosed):  # settled once: no second receipt on it
        await ledger.settle(N1, "k", ONE, "EUR", "r2")
    with pytest.raises(HoldClosed):
        await ledger.release(N1, "k")
    # A replayed receipt with another amount, or on another hold, is refused.
    with pytest.raises(ReceiptUsed):
        await ledger.settle(N1, "k", ONE, "EUR", "r1")
    await ledger.reserve(N1, ALICE, ONE, "EUR", "k2")
    with pytest.raises(ReceiptUsed):
        await ledger.settle(N1, "k2", 2 * ONE, "EUR", "r1")
    balances = {b.account: b.units for b in await ledger.store.balances()}
    assert balances == {"system/credit": -10 * ONE, ALICE: 8 * ONE, N1: 2 * ONE}


async def test_bad_amounts_and_accounts_are_refused() -> None:
    ledger = _ledger()
    for units in (0, -1):
        with pytest.raises(InvalidArgument):
            await ledger.grant("root", ALICE, units, "EUR")
        with pytest.raises(InvalidArgument):
            await ledger.reserve(N1, ALICE, units, "EUR", "k")
    with pytest.raises(InvalidArgument):
        await ledger.settle(N1, "k", -1, "EUR", "r")
    with pytest.raises(InvalidArgument):
        await ledger.reserve(N1, N1, ONE, "EUR", "self")
    with pytest.raises(InvalidArgument):
        await ledger.reserve(N1, "system/credit", ONE, "EUR", "sys")
    with pytest.raises(InvalidArgument):
        await ledger.grant("root", "system/credit", ONE, "EUR")
    with pytest.raises(InvalidArgument):
        await ledger.set_budget("root", ALICE, "EUR", "week", ONE)


async def test_balances_cannot_overflow() -> None:
    ledger = _ledger()
    big = 10**18 * ONE - 1
    await ledger.grant("root", ALICE, big, "EUR")
    with pytest.raises(KodosumiError) as info:
        await ledger.grant("root", BOB, 1, "EUR")  # the system account would pass 10^18
    assert info.value.reason == "BALANCE_LIMIT"


async def test_grants_are_idempotent_by_key() -> None:
    ledger = _ledger()
    first, replayed = await ledger.grant("root", ALICE, ONE, "EUR", key="g1")
    assert not replayed
    again, replayed = await ledger.grant("root", ALICE, ONE, "EUR", key="g1")
    assert replayed and again == first
    with pytest.raises(GrantKeyReused):
        await ledger.grant("root", BOB, ONE, "EUR", key="g1")
    assert (await ledger.balances(ALICE))[0].units == ONE


async def test_concurrent_reservations_never_overspend() -> None:
    ledger = _ledger()
    await ledger.grant("root", ALICE, 1000 * ONE, "EUR")
    await ledger.set_budget("root", ALICE, "EUR", "month", 10 * ONE)

    async def one(i: int) -> bool:
        try:
            await ledger.reserve(N1, ALICE, ONE, "EUR", f"k{i}")
        except BudgetExhausted:
            return False
        return True

    accepted = await asyncio.gather(*(one(i) for i in range(50)))
    assert sum(accepted) == 10


# -- the property: random sequences keep the books straight ---------------------------------------

_ACCOUNTS = (ALICE, BOB, "user/carol")
_SELLERS = (N1, N2)
_op = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(_ACCOUNTS), st.integers(-2, 50)),
    st.tuples(
        st.just("reserve"),
        st.sampled_from(_SELLERS),
        st.sampled_from(_ACCOUNTS),
        st.integers(-1, 40),
        st.integers(0, 6),
    ),
    st.tuples(
        st.just("settle"),
        st.sampled_from(_SELLERS),
        st.integers(0, 6),
        st.integers(-1, 45),
        st.integers(0, 8),
    ),
    st.tuples(st.just("release"), st.sampled_from(_SELLERS), st.integers(0, 6)),
    st.tuples(st.just("budget"), st.sampled_from((*_ACCOUNTS, "group/ml")), st.integers(0, 60)),
    st.tuples(st.just("tick"), st.integers(0, 5000)),
)


async def _check_books(ledger: Ledger) -> None:
    balances = await ledger.store.balances()
    assert sum(b.units for b in balances) == 0
    for b in balances:
        if b.account.startswith("user/"):
            assert b.held_units >= 0 and b.available_units >= 0, b
        if b.account.startswith("node/"):
            assert b.units >= 0 and b.held_units == 0, b
    for use in await ledger.budgets_of(None):
        # A budget may be lowered below what was spent, never passed by a new hold.
        assert use.used_units >= 0


async def _run(ops: list[tuple[object, ...]]) -> None:
    clock = ManualClock()
    ledger = _ledger(clock)
    limits: dict[str, int] = {}
    for op in ops:
        kind = op[0]
        try:
            if kind == "grant":
                await ledger.grant("root", str(op[1]), int(op[2]), "EUR")  # type: ignore[call-overload]
            elif kind == "reserve":
                _, seller, account, units, key = op
                before = {u.budget.subject: u.used_units for u in await ledger.budgets_of(None)}
                hold = await ledger.reserve(
                    str(seller),
                    str(account),
                    int(units),
                    "EUR",
                    f"k{key}",
                    ttl_seconds=3000,  # type: ignore[call-overload]
                )
                for use in await ledger.budgets_of(None):
                    grew = use.used_units > before.get(use.budget.subject, 0)
                    if grew:
                        assert use.used_units <= use.budget.limit_units
                assert hold.units == units
            elif kind == "settle":
                _, seller, key, units, receipt = op
                await ledger.settle(str(seller), f"k{key}", int(units), "EUR", f"r{receipt}")  # type: ignore[call-overload]
            elif kind == "release":
                await ledger.release(str(op[1]), f"k{op[2]}")
            elif kind == "budget":
                limits[str(op[1])] = int(op[2])  # type: ignore[call-overload]
                await ledger.set_budget("root", str(op[1]), "EUR", "month", int(op[2]))  # type: ignore[call-overload]
            else:
                clock.advance(int(op[1]))  # type: ignore[call-overload]
        except KodosumiError:
            pass
        await _check_books(ledger)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=40))
def test_random_sequences_keep_the_books_balanced(ops: list[tuple[object, ...]]) -> None:
    asyncio.run(_run(ops))
