"""The ledger's state interface. Two implementations: `memory_store.MemoryLedgerStore` (tests)
and `sqlite_store.SqliteLedgerStore` (tables `ledger_*` in the registry's database). One
contract suite (`tests/ledger/test_store_contract.py`) runs against both.

Every write is one atomic step that keeps the derived figures (balances, held sums, budget
use) with the rows they derive from; deciding *whether* to write (funds, budgets, ownership)
is the domain's (`ledger.py`), which serializes its writes.
"""

from __future__ import annotations

from typing import Protocol

from kodosumi.settlement import Balance, Entry, Hold
from registryd.ledger.model import Budget


class LedgerStore(Protocol):
    async def add_entry(self, entry: Entry) -> Entry:
        """Post `entry` (its id is assigned): debit and credit balances move together."""
        ...

    async def add_hold(self, hold: Hold) -> None:
        """Place an open hold: the account's held sum and each charged budget use grow."""
        ...

    async def close_hold(
        self,
        hold: Hold,
        state: str,
        at: float,
        settled_units: int = 0,
        receipt_id: str = "",
        entry: Entry | None = None,
    ) -> tuple[Hold, Entry | None]:
        """Close an open hold (settled, released or expired) and post `entry` with it, in
        one step: the held sum shrinks by the hold, budget uses by what was not settled."""
        ...

    async def get_hold(self, holder: str, key: str) -> Hold | None: ...

    async def hold_by_receipt(self, receipt_id: str) -> Hold | None: ...

    async def hold_by_id(self, hold_id: str) -> Hold | None: ...

    async def holds(
        self, account: str, open_only: bool = True, limit: int = 100, by_holder: bool = False
    ) -> list[Hold]:
        """Holds on `account`'s funds (`by_holder`: that `account` holds as a seller),
        newest first (by creation, then id)."""
        ...

    async def entry_by_key(self, key: str) -> Entry | None: ...

    async def entry_of_hold(self, hold_id: str) -> Entry | None: ...

    async def expiring_holds(self, now: float) -> list[Hold]:
        """Open holds whose expiry is at or before `now`."""
        ...

    async def balance(self, account: str, currency: str) -> Balance: ...

    async def balances(self, account: str | None = None) -> list[Balance]:
        """Balances of `account` (None: of every account), by account and currency."""
        ...

    async def entries(
        self, account: str, currency: str = "", before: int = 0, limit: int = 100
    ) -> list[Entry]:
        """Entries with `account` on either leg, newest first, ids below `before` (0: all)."""
        ...

    async def budget_use(self, subject: str, period_key: str, currency: str) -> int: ...

    async def put_budget(self, budget: Budget) -> None: ...

    async def delete_budget(self, subject: str, currency: str, period: str) -> bool: ...

    async def budgets(self, subjects: tuple[str, ...] | None = None) -> list[Budget]:
        """Budgets of `subjects` (None: all), by subject, currency and period."""
        ...

    async def close(self) -> None: ...
