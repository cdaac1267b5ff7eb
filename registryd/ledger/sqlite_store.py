"""A `LedgerStore` in the registry's SQLite database (tables `ledger_*`, WAL).

Its own connection beside the registry's and the auth provider's, writing with `BEGIN
IMMEDIATE` (they take turns) and `synchronous=FULL`: a posting the registry answered is on
disk, whatever happens to the process or the machine next. Each write is one transaction
that keeps the derived rows (`ledger_balances`, `ledger_budget_use`) with the rows they derive
from, so a registry killed mid-write leaves either all of it or none.

Amounts are whole numbers of 10^-9 units and may pass SQLite's 64-bit integers (10^18 units
is 10^27 of them): they are stored as decimal text and summed in Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi import sqlite
from kodosumi.settlement import OPEN, SETTLED, Balance, Entry, Hold
from registryd.ledger import crashpoints
from registryd.ledger.model import Budget
from registryd.ledger.sqlite_rows import ENTRY_COLUMNS, HOLD_COLUMNS, SCHEMA, entry_of, hold_of


class SqliteLedgerStore:
    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteLedgerStore:
        conn = await sqlite.connect(path, synchronous="FULL")
        try:
            await conn.executescript(SCHEMA)
        except BaseException:
            await conn.close()
            raise
        return cls(path, conn)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                # BEGIN inside the try: a write cancelled while its BEGIN is queued (a
                # caller's deadline) still gets its ROLLBACK queued after it.
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    # -- writes ---------------------------------------------------------------------------------

    async def add_entry(self, entry: Entry) -> Entry:
        async with self._write() as db:
            return await self._post(db, entry)

    async def _post(self, db: aiosqlite.Connection, entry: Entry) -> Entry:
        cursor = await db.execute(
            "INSERT INTO ledger_entries (kind, debit, credit, currency, units, at, by, memo, "
            "hold_id, receipt_id, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.kind,
                entry.debit,
                entry.credit,
                entry.currency,
                str(entry.units),
                entry.at,
                entry.by,
                entry.memo,
                entry.hold_id,
                entry.receipt_id,
                entry.key,
            ),
        )
        assert cursor.lastrowid is not None
        await self._shift(db, entry.debit, entry.currency, -entry.units, 0)
        await self._shift(db, entry.credit, entry.currency, entry.units, 0)
        return Entry(
            cursor.lastrowid,
            entry.kind,
            entry.debit,
            entry.credit,
            entry.currency,
            entry.units,
            entry.at,
            entry.by,
            entry.memo,
            entry.hold_id,
            entry.receipt_id,
            entry.key,
        )

    async def _shift(
        self, db: aiosqlite.Connection, account: str, currency: str, units: int, held: int
    ) -> None:
        rows = list(
            await db.execute_fetchall(
                "SELECT units, held_units FROM ledger_balances WHERE account = ? AND currency = ?",
                (account, currency),
            )
        )
        now_units, now_held = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        await db.execute(
            "INSERT OR REPLACE INTO ledger_balances (account, currency, units, held_units) "
            "VALUES (?, ?, ?, ?)",
            (account, currency, str(now_units + units), str(now_held + held)),
        )

    async def _use(
        self, db: aiosqlite.Connection, subject: str, period: str, currency: str, units: int
    ) -> None:
        rows = list(
            await db.execute_fetchall(
                "SELECT units FROM ledger_budget_use WHERE subject = ? AND period_key = ? "
                "AND currency = ?",
                (subject, period, currency),
            )
        )
        now = int(rows[0][0]) if rows else 0
        await db.execute(
            "INSERT OR REPLACE INTO ledger_budget_use (subject, period_key, currency, units) "
            "VALUES (?, ?, ?, ?)",
            (subject, period, currency, str(now + units)),
        )

    async def add_hold(self, hold: Hold) -> None:
        async with self._write() as db:
            await db.execute(
                f"INSERT INTO ledger_holds ({HOLD_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hold.hold_id,
                    hold.holder,
                    hold.key,
                    hold.account,
                    hold.payee,
                    hold.currency,
                    str(hold.units),
                    hold.created_at,
                    hold.expires_at,
                    hold.state,
                    str(hold.settled_units),
                    hold.receipt_id,
                    hold.closed_at,
                    json.dumps([list(c) for c in hold.charges]),
                ),
            )
            await self._shift(db, hold.account, hold.currency, 0, hold.units)
            for subject, period in hold.charges:
                await self._use(db, subject, period, hold.currency, hold.units)

    async def close_hold(
        self,
        hold: Hold,
        state: str,
        at: float,
        settled_units: int = 0,
        receipt_id: str = "",
        entry: Entry | None = None,
    ) -> tuple[Hold, Entry | None]:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE ledger_holds SET state = ?, closed_at = ?, settled_units = ?, "
                "receipt_id = ? WHERE hold_id = ? AND state = ?",
                (state, at, str(settled_units), receipt_id, hold.hold_id, OPEN),
            )
            if cursor.rowcount != 1:
                raise RuntimeError(f"hold {hold.hold_id} is not open")
            await self._shift(db, hold.account, hold.currency, 0, -hold.units)
            for subject, period in hold.charges:
                await self._use(db, subject, period, hold.currency, settled_units - hold.units)
            posted = await self._post(db, entry) if entry is not None else None
            if state == SETTLED:
                crashpoints.reach("settle_before_commit")
        if state == SETTLED:
            crashpoints.reach("settle_after_commit")
        closed = Hold(
            hold.hold_id,
            hold.holder,
            hold.key,
            hold.account,
            hold.payee,
            hold.currency,
            hold.units,
            hold.created_at,
            hold.expires_at,
            state,
            settled_units,
            receipt_id,
            at,
            hold.charges,
        )
        return closed, posted

    # -- reads ----------------------------------------------------------------------------------

    async def _holds(self, where: str, params: tuple[Any, ...]) -> list[Hold]:
        rows = await self._rows(f"SELECT {HOLD_COLUMNS} FROM ledger_holds {where}", params)
        return [hold_of(row) for row in rows]

    async def get_hold(self, holder: str, key: str) -> Hold | None:
        found = await self._holds("WHERE holder = ? AND key = ?", (holder, key))
        return found[0] if found else None

    async def hold_by_receipt(self, receipt_id: str) -> Hold | None:
        found = await self._holds("WHERE receipt_id = ? AND receipt_id != ''", (receipt_id,))
        return found[0] if found else None

    async def hold_by_id(self, hold_id: str) -> Hold | None:
        found = await self._holds("WHERE hold_id = ?", (hold_id,))
        return found[0] if found else None

    async def holds(
        self, account: str, open_only: bool = True, limit: int = 100, by_holder: bool = False
    ) -> list[Hold]:
        column = "holder" if by_holder else "account"
        return await self._holds(
            f"WHERE {column} = ? AND (? = 0 OR state = 'open') "
            "ORDER BY created_at DESC, hold_id DESC LIMIT ?",
            (account, int(open_only), limit),
        )

    async def expiring_holds(self, now: float) -> list[Hold]:
        return await self._holds(
            "WHERE state = 'open' AND expires_at <= ? ORDER BY expires_at, hold_id", (now,)
        )

    async def _entries(self, where: str, params: tuple[Any, ...]) -> list[Entry]:
        rows = await self._rows(f"SELECT {ENTRY_COLUMNS} FROM ledger_entries {where}", params)
        return [entry_of(row) for row in rows]

    async def entry_by_key(self, key: str) -> Entry | None:
        found = await self._entries("WHERE key = ? AND key != ''", (key,))
        return found[0] if found else None

    async def entry_of_hold(self, hold_id: str) -> Entry | None:
        found = await self._entries("WHERE hold_id = ? AND hold_id != ''", (hold_id,))
        return found[0] if found else None

    async def entries(
        self, account: str, currency: str = "", before: int = 0, limit: int = 100
    ) -> list[Entry]:
        return await self._entries(
            "WHERE (debit = ? OR credit = ?) AND (? = '' OR currency = ?) "
            "AND (? = 0 OR entry_id < ?) ORDER BY entry_id DESC LIMIT ?",
            (account, account, currency, currency, before, before, limit),
        )

    async def balance(self, account: str, currency: str) -> Balance:
        rows = await self._rows(
            "SELECT units, held_units FROM ledger_balances WHERE account = ? AND currency = ?",
            (account, currency),
        )
        if not rows:
            return Balance(account, currency, 0, 0)
        return Balance(account, currency, int(rows[0][0]), int(rows[0][1]))

    async def balances(self, account: str | None = None) -> list[Balance]:
        rows = await self._rows(
            "SELECT account, currency, units, held_units FROM ledger_balances "
            "WHERE ? IS NULL OR account = ? ORDER BY account, currency",
            (account, account),
        )
        return [Balance(a, c, int(u), int(h)) for a, c, u, h in rows]

    async def budget_use(self, subject: str, period_key: str, currency: str) -> int:
        rows = await self._rows(
            "SELECT units FROM ledger_budget_use WHERE subject = ? AND period_key = ? "
            "AND currency = ?",
            (subject, period_key, currency),
        )
        return int(rows[0][0]) if rows else 0

    async def put_budget(self, budget: Budget) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO ledger_budgets (subject, currency, period, limit_units, "
                "set_at, set_by) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    budget.subject,
                    budget.currency,
                    budget.period,
                    str(budget.limit_units),
                    budget.set_at,
                    budget.set_by,
                ),
            )

    async def delete_budget(self, subject: str, currency: str, period: str) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "DELETE FROM ledger_budgets WHERE subject = ? AND currency = ? AND period = ?",
                (subject, currency, period),
            )
            return cursor.rowcount > 0

    async def budgets(self, subjects: tuple[str, ...] | None = None) -> list[Budget]:
        rows = await self._rows(
            "SELECT subject, currency, period, limit_units, set_at, set_by FROM ledger_budgets "
            "ORDER BY subject, currency, period"
        )
        return [
            Budget(s, c, p, int(limit), at, by)
            for s, c, p, limit, at, by in rows
            if subjects is None or s in subjects
        ]

    async def close(self) -> None:
        await self._conn.close()
