"""A `LedgerStore` in memory (tests, throwaway registries)."""

from __future__ import annotations

from dataclasses import replace

from kodosumi.settlement import OPEN, Balance, Entry, Hold
from registryd.ledger.model import Budget


class MemoryLedgerStore:
    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._holds: dict[tuple[str, str], Hold] = {}
        self._balances: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._use: dict[tuple[str, str, str], int] = {}
        self._budgets: dict[tuple[str, str, str], Budget] = {}

    async def add_entry(self, entry: Entry) -> Entry:
        posted = replace(entry, entry_id=len(self._entries) + 1)
        self._entries.append(posted)
        self._move(posted)
        return posted

    def _move(self, entry: Entry) -> None:
        for account, sign in ((entry.debit, -1), (entry.credit, 1)):
            slot = (account, entry.currency)
            self._balances[slot] = self._balances.get(slot, 0) + sign * entry.units

    async def add_hold(self, hold: Hold) -> None:
        self._holds[(hold.holder, hold.key)] = hold
        slot = (hold.account, hold.currency)
        self._held[slot] = self._held.get(slot, 0) + hold.units
        for subject, period in hold.charges:
            use = (subject, period, hold.currency)
            self._use[use] = self._use.get(use, 0) + hold.units

    async def close_hold(
        self,
        hold: Hold,
        state: str,
        at: float,
        settled_units: int = 0,
        receipt_id: str = "",
        entry: Entry | None = None,
    ) -> tuple[Hold, Entry | None]:
        current = self._holds[(hold.holder, hold.key)]
        assert current.state == OPEN
        closed = replace(
            current,
            state=state,
            closed_at=at,
            settled_units=settled_units,
            receipt_id=receipt_id,
        )
        self._holds[(hold.holder, hold.key)] = closed
        self._held[(hold.account, hold.currency)] -= hold.units
        for subject, period in hold.charges:
            self._use[(subject, period, hold.currency)] -= hold.units - settled_units
        posted = await self.add_entry(entry) if entry is not None else None
        return closed, posted

    async def get_hold(self, holder: str, key: str) -> Hold | None:
        return self._holds.get((holder, key))

    async def hold_by_receipt(self, receipt_id: str) -> Hold | None:
        return next((h for h in self._holds.values() if h.receipt_id == receipt_id), None)

    async def hold_by_id(self, hold_id: str) -> Hold | None:
        return next((h for h in self._holds.values() if h.hold_id == hold_id), None)

    async def holds(
        self, account: str, open_only: bool = True, limit: int = 100, by_holder: bool = False
    ) -> list[Hold]:
        found = [
            h
            for h in self._holds.values()
            if (h.holder if by_holder else h.account) == account
            and (not open_only or h.state == OPEN)
        ]
        found.sort(key=lambda h: (h.created_at, h.hold_id), reverse=True)
        return found[:limit]

    async def entry_by_key(self, key: str) -> Entry | None:
        return next((e for e in self._entries if e.key == key), None)

    async def entry_of_hold(self, hold_id: str) -> Entry | None:
        return next((e for e in self._entries if e.hold_id == hold_id), None)

    async def expiring_holds(self, now: float) -> list[Hold]:
        found = [h for h in self._holds.values() if h.state == OPEN and h.expires_at <= now]
        return sorted(found, key=lambda h: (h.expires_at, h.hold_id))

    async def balance(self, account: str, currency: str) -> Balance:
        slot = (account, currency)
        return Balance(account, currency, self._balances.get(slot, 0), self._held.get(slot, 0))

    async def balances(self, account: str | None = None) -> list[Balance]:
        slots = sorted(
            {s for s in (*self._balances, *self._held) if account is None or s[0] == account}
        )
        return [await self.balance(a, c) for a, c in slots]

    async def entries(
        self, account: str, currency: str = "", before: int = 0, limit: int = 100
    ) -> list[Entry]:
        found = [
            e
            for e in reversed(self._entries)
            if account in (e.debit, e.credit)
            and (not currency or e.currency == currency)
            and (not before or e.entry_id < before)
        ]
        return found[:limit]

    async def budget_use(self, subject: str, period_key: str, currency: str) -> int:
        return self._use.get((subject, period_key, currency), 0)

    async def put_budget(self, budget: Budget) -> None:
        self._budgets[(budget.subject, budget.currency, budget.period)] = budget

    async def delete_budget(self, subject: str, currency: str, period: str) -> bool:
        return self._budgets.pop((subject, currency, period), None) is not None

    async def budgets(self, subjects: tuple[str, ...] | None = None) -> list[Budget]:
        return [
            self._budgets[k] for k in sorted(self._budgets) if subjects is None or k[0] in subjects
        ]

    async def close(self) -> None:
        return None
