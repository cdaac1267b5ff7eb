"""The ledger's domain: credit grants, holds, settlements, releases, balances and budgets.

Plain objects in and out, a `LedgerStore` and a `Clock` injected; nothing here knows gRPC.
Who may call what is the authorization table's (`policy.py`) and the servicer's (which
account a caller may name); this module decides whether the money allows it.

Every change runs under one lock: the checks (available balance, budgets, the hold's state)
and the write they allow are one step, so concurrent reservations never spend the same funds
or budget twice. The store makes each write atomic on disk; replays are answered from what
was stored (a hold by its holder's key, a settlement by its receipt id, a grant by its key).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kodosumi.clock import Clock
from kodosumi.errors import AlreadyExists, InvalidArgument
from kodosumi.settlement import (
    EXPIRED,
    MAX_UNITS,
    OPEN,
    PERIODS,
    RELEASED,
    SETTLED,
    SYSTEM_CREDIT,
    Balance,
    BalanceLimit,
    BudgetExhausted,
    CurrencyMismatch,
    Entry,
    Hold,
    HoldClosed,
    HoldKeyReused,
    HoldNotFound,
    InsufficientFunds,
    ReceiptUsed,
    Settled,
    SettleExceedsHold,
)
from registryd.ledger.model import Budget, BudgetUse, period_key
from registryd.ledger.store import LedgerStore

# The groups of a user account ("user/alice" -> {"ml"}), as the auth provider knows them.
GroupsOf = Callable[[str], Awaitable[frozenset[str]]]


async def no_groups(account: str) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    # A hold lapses after this unless its seller names a shorter or longer time.
    hold_ttl_seconds: float = 86_400.0
    # The longest a seller may hold a buyer's funds.
    max_hold_ttl_seconds: float = 7 * 86_400.0


class GrantKeyReused(AlreadyExists):
    default_reason = "GRANT_KEY_REUSED"

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} names a grant of another account, amount or currency")


class Ledger:
    def __init__(
        self,
        store: LedgerStore,
        clock: Clock,
        groups_of: GroupsOf = no_groups,
        settings: LedgerSettings | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.groups_of = groups_of
        self.settings = settings or LedgerSettings()
        self._lock = asyncio.Lock()

    async def _expire(self, now: float) -> None:
        """Close the holds that lapsed: their funds and budget are free again."""
        for hold in await self.store.expiring_holds(now):
            await self.store.close_hold(hold, EXPIRED, now)

    # -- credit -----------------------------------------------------------------------------------

    async def grant(
        self, by: str, account: str, units: int, currency: str, memo: str = "", key: str = ""
    ) -> tuple[Entry, bool]:
        """Credit `account` from `system/credit`; with `key`, a replay returns the first
        grant (True: replayed)."""
        if units <= 0:
            raise InvalidArgument.field("amount", "an amount > 0")
        if account == SYSTEM_CREDIT:
            raise InvalidArgument.field("account", "the system account grants, it is not granted")
        async with self._lock:
            if key:
                prior = await self.store.entry_by_key(key)
                if prior is not None:
                    same = (prior.credit, prior.units, prior.currency) == (account, units, currency)
                    if not same:
                        raise GrantKeyReused(key)
                    return prior, True
            for slot in (account, SYSTEM_CREDIT):
                balance = await self.store.balance(slot, currency)
                if abs(balance.units) + units >= MAX_UNITS:
                    raise BalanceLimit(slot, currency)
            entry = Entry(
                0,
                "grant",
                SYSTEM_CREDIT,
                account,
                currency,
                units,
                self.clock.now(),
                by,
                memo,
                key=key,
            )
            return await self.store.add_entry(entry), False

    # -- holds and settlement (sellers) ------------------------------------------------------------

    async def reserve(
        self,
        holder: str,
        account: str,
        units: int,
        currency: str,
        key: str,
        ttl_seconds: float = 0.0,
    ) -> Hold:
        """Hold `units` of `account`'s funds for `holder` (paid to `holder` when settled)."""
        if units <= 0:
            raise InvalidArgument.field("amount", "an amount > 0")
        if account in (holder, SYSTEM_CREDIT):
            raise InvalidArgument.field("account", "a buyer's account, not yours or the system's")
        if ttl_seconds < 0 or ttl_seconds > self.settings.max_hold_ttl_seconds:
            raise InvalidArgument.field(
                "ttl", f"from 0 (the default) to {self.settings.max_hold_ttl_seconds:g} seconds"
            )
        ttl = ttl_seconds or self.settings.hold_ttl_seconds
        subjects = [account]
        if account.startswith("user/"):
            subjects += [f"group/{g}" for g in sorted(await self.groups_of(account))]
        async with self._lock:
            now = self.clock.now()
            await self._expire(now)
            prior = await self.store.get_hold(holder, key)
            if prior is not None:
                if (prior.account, prior.units, prior.currency) != (account, units, currency):
                    raise HoldKeyReused(key)
                return prior
            balance = await self.store.balance(account, currency)
            if balance.available_units < units:
                raise InsufficientFunds(account, currency, max(0, balance.available_units))
            for budget in await self.store.budgets(tuple(subjects)):
                if budget.currency != currency:
                    continue
                used = await self.store.budget_use(
                    budget.subject, period_key(budget.period, now), currency
                )
                if used + units > budget.limit_units:
                    raise BudgetExhausted(
                        budget.subject,
                        budget.period,
                        currency,
                        budget.limit_units,
                        max(0, budget.limit_units - used),
                    )
            hold = Hold(
                hold_id=uuid.uuid4().hex,
                holder=holder,
                key=key,
                account=account,
                payee=holder,
                currency=currency,
                units=units,
                created_at=now,
                expires_at=now + ttl,
                # Every period of every subject counts, so a budget set later in a period
                # sees what was spent before it.
                charges=tuple((s, period_key(p, now)) for s in subjects for p in PERIODS),
            )
            await self.store.add_hold(hold)
            return hold

    async def settle(
        self, holder: str, key: str, units: int, currency: str, receipt_id: str
    ) -> Settled:
        """Pay `units` of the hold to its payee and close it; a replayed receipt posts
        nothing again."""
        if units < 0:
            raise InvalidArgument.field("amount", "an amount >= 0")
        async with self._lock:
            now = self.clock.now()
            await self._expire(now)
            prior = await self.store.hold_by_receipt(receipt_id)
            if prior is not None:
                same = (prior.holder, prior.key, prior.settled_units, prior.currency) == (
                    holder,
                    key,
                    units,
                    currency,
                )
                if not same:
                    raise ReceiptUsed(receipt_id)
                return Settled(prior, await self.store.entry_of_hold(prior.hold_id), True)
            hold = await self.store.get_hold(holder, key)
            if hold is None:
                raise HoldNotFound(key)
            if currency != hold.currency:
                raise CurrencyMismatch(hold.currency, currency)
            if hold.state != OPEN:
                raise HoldClosed(hold)
            if units > hold.units:
                raise SettleExceedsHold(hold.units, hold.currency)
            payee = await self.store.balance(hold.payee, currency)
            if payee.units + units >= MAX_UNITS:
                raise BalanceLimit(hold.payee, currency)
            entry = (
                Entry(
                    0,
                    "settle",
                    hold.account,
                    hold.payee,
                    currency,
                    units,
                    now,
                    holder,
                    hold_id=hold.hold_id,
                    receipt_id=receipt_id,
                )
                if units
                else None
            )
            closed, posted = await self.store.close_hold(
                hold, SETTLED, now, units, receipt_id, entry
            )
            return Settled(closed, posted)

    async def release(self, holder: str, key: str) -> Hold:
        """Close the hold paying nothing; releasing a released or lapsed hold is a no-op."""
        async with self._lock:
            now = self.clock.now()
            await self._expire(now)
            hold = await self.store.get_hold(holder, key)
            if hold is None:
                raise HoldNotFound(key)
            if hold.state == SETTLED:
                raise HoldClosed(hold)
            if hold.state != OPEN:
                return hold
            closed, _ = await self.store.close_hold(hold, RELEASED, now)
            return closed

    async def cancel(self, hold_id: str) -> Hold:
        """Admins: release any open hold by id (its seller is gone, or holds what it should
        not); a closed hold is returned as it is."""
        async with self._lock:
            now = self.clock.now()
            await self._expire(now)
            hold = await self.store.hold_by_id(hold_id)
            if hold is None:
                raise HoldNotFound(hold_id, f"no hold with id {hold_id!r}")
            if hold.state != OPEN:
                return hold
            closed, _ = await self.store.close_hold(hold, RELEASED, now)
            return closed

    async def holds_of(
        self, account: str, open_only: bool = True, limit: int = 100, by_holder: bool = False
    ) -> list[Hold]:
        async with self._lock:
            await self._expire(self.clock.now())
        return await self.store.holds(account, open_only, limit, by_holder)

    async def get_hold(self, holder: str, key: str) -> Hold:
        async with self._lock:
            await self._expire(self.clock.now())
            hold = await self.store.get_hold(holder, key)
        if hold is None:
            raise HoldNotFound(key)
        return hold

    # -- reading --------------------------------------------------------------------------------

    async def balances(self, account: str) -> list[Balance]:
        async with self._lock:
            await self._expire(self.clock.now())
        return await self.store.balances(account)

    async def history(
        self, account: str, currency: str = "", before: int = 0, limit: int = 100
    ) -> list[Entry]:
        return await self.store.entries(account, currency, before, limit)

    # -- budgets (admins) -------------------------------------------------------------------------

    async def set_budget(
        self, by: str, subject: str, currency: str, period: str, limit_units: int
    ) -> BudgetUse:
        if period not in PERIODS:
            raise InvalidArgument.field("period", f"one of {', '.join(PERIODS)}")
        if limit_units < 0:
            raise InvalidArgument.field("amount", "an amount >= 0")
        budget = Budget(subject, currency, period, limit_units, self.clock.now(), by)
        async with self._lock:
            await self.store.put_budget(budget)
        return await self._use(budget)

    async def delete_budget(self, subject: str, currency: str, period: str) -> bool:
        async with self._lock:
            return await self.store.delete_budget(subject, currency, period)

    async def budgets_of(self, subjects: tuple[str, ...] | None) -> list[BudgetUse]:
        """Budgets with their use this period: of `subjects` (None: all)."""
        async with self._lock:
            await self._expire(self.clock.now())
        return [await self._use(b) for b in await self.store.budgets(subjects)]

    async def subjects_of(self, account: str) -> tuple[str, ...]:
        """The budget subjects spending of `account` counts against: it and its groups."""
        if not account.startswith("user/"):
            return (account,)
        return (account, *(f"group/{g}" for g in sorted(await self.groups_of(account))))

    async def _use(self, budget: Budget) -> BudgetUse:
        key = period_key(budget.period, self.clock.now())
        used = await self.store.budget_use(budget.subject, key, budget.currency)
        return BudgetUse(budget, key, used)
