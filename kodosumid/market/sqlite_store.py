"""A `ContractStore` in one SQLite file (WAL, 0600, opened by `kodosumi.sqlite`): the node's."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import aiosqlite

from kodosumi import sqlite
from kodosumi.charges import FreeUsed
from kodosumid.market.model import StoredQuote, StoredReceipt

SCHEMA = """
CREATE TABLE IF NOT EXISTS quotes (
    quote_id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    flow TEXT NOT NULL,
    issue_ns INTEGER NOT NULL,
    expire_ns INTEGER NOT NULL,
    token TEXT NOT NULL,
    execution_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS quotes_requester ON quotes (requester, expire_ns);
CREATE INDEX IF NOT EXISTS quotes_execution ON quotes (execution_id);
CREATE TABLE IF NOT EXISTS receipts (
    execution_id TEXT PRIMARY KEY,
    receipt_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    flow TEXT NOT NULL,
    quote_id TEXT NOT NULL,
    issue_ns INTEGER NOT NULL,
    token TEXT NOT NULL,
    free_runs INTEGER NOT NULL,
    -- decimal text: exact
    free_seconds TEXT NOT NULL,
    free_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_owner ON receipts (owner, flow, issue_ns);
"""

_QUOTE = "quote_id, requester, flow, issue_ns, expire_ns, token, execution_id"
_RECEIPT = "receipt_id, execution_id, owner, flow, quote_id, issue_ns, token"


class SqliteContractStore:
    def __init__(self, path: Path | None, *, synchronous: str = "NORMAL") -> None:
        # None: an in-memory database (tests).
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the contract store is not open")
        return self._db

    async def open(self) -> None:
        self._db = await sqlite.connect(self.path, synchronous=self.synchronous)
        await self._db.executescript(SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def put_quote(self, quote: StoredQuote) -> None:
        async with self._lock:
            await self.db.execute(
                f"INSERT INTO quotes ({_QUOTE}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    quote.quote_id,
                    quote.requester,
                    quote.flow,
                    quote.issue_ns,
                    quote.expire_ns,
                    quote.token,
                    quote.execution_id,
                ),
            )

    async def _one_quote(self, where: str, value: str) -> StoredQuote | None:
        async with self.db.execute(f"SELECT {_QUOTE} FROM quotes WHERE {where} = ?", (value,)) as c:
            row = await c.fetchone()
        return StoredQuote(*row) if row is not None else None

    async def get_quote(self, quote_id: str) -> StoredQuote | None:
        return await self._one_quote("quote_id", quote_id)

    async def quote_of(self, execution_id: str) -> StoredQuote | None:
        if not execution_id:
            return None
        return await self._one_quote("execution_id", execution_id)

    async def claim(self, quote_id: str, execution_id: str) -> bool:
        async with self._lock:
            # One statement: of launches racing for a quote, exactly one changes the row.
            cursor = await self.db.execute(
                "UPDATE quotes SET execution_id = ? WHERE quote_id = ? AND execution_id = ''",
                (execution_id, quote_id),
            )
            return cursor.rowcount == 1

    async def release(self, quote_id: str, execution_id: str) -> None:
        async with self._lock:
            await self.db.execute(
                "UPDATE quotes SET execution_id = '' WHERE quote_id = ? AND execution_id = ?",
                (quote_id, execution_id),
            )

    async def open_quotes(self, requester: str, now_ns: int) -> int:
        async with self.db.execute(
            "SELECT count(*) FROM quotes WHERE requester = ? AND expire_ns > ? "
            "AND execution_id = ''",
            (requester, now_ns),
        ) as c:
            row = await c.fetchone()
        return int(row[0]) if row else 0

    async def purge_quotes(self, expired_before_ns: int) -> int:
        async with self._lock:
            cursor = await self.db.execute(
                "DELETE FROM quotes WHERE expire_ns < ? AND execution_id = ''",
                (expired_before_ns,),
            )
            return cursor.rowcount

    async def put_receipt(self, receipt: StoredReceipt) -> StoredReceipt:
        async with self._lock:
            free = receipt.free
            await self.db.execute(
                f"INSERT OR IGNORE INTO receipts ({_RECEIPT}, free_runs, free_seconds, "
                "free_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.receipt_id,
                    receipt.execution_id,
                    receipt.owner,
                    receipt.flow,
                    receipt.quote_id,
                    receipt.issue_ns,
                    receipt.token,
                    free.runs,
                    str(free.seconds),
                    free.tokens,
                ),
            )
        kept = await self.get_receipt(receipt.execution_id)
        assert kept is not None
        return kept

    async def get_receipt(self, execution_id: str) -> StoredReceipt | None:
        async with self.db.execute(
            f"SELECT {_RECEIPT}, free_runs, free_seconds, free_tokens FROM receipts "
            "WHERE execution_id = ?",
            (execution_id,),
        ) as c:
            row = await c.fetchone()
        if row is None:
            return None
        receipt_id, execution_id, owner, flow, quote_id, issue_ns, token, runs, sec, tok = row
        return StoredReceipt(
            receipt_id,
            execution_id,
            owner,
            flow,
            quote_id,
            issue_ns,
            token,
            FreeUsed(runs, Decimal(sec), tok),
        )

    async def unreceipted(self, limit: int = 500) -> list[str]:
        async with self.db.execute(
            "SELECT q.execution_id FROM quotes q LEFT JOIN receipts r "
            "ON r.execution_id = q.execution_id "
            "WHERE q.execution_id != '' AND r.execution_id IS NULL "
            "ORDER BY q.execution_id LIMIT ?",
            (limit,),
        ) as c:
            return [row[0] async for row in c]

    async def free_used(self, owner: str, flow: str, since_ns: int) -> FreeUsed:
        total = FreeUsed()
        async with self.db.execute(
            "SELECT free_runs, free_seconds, free_tokens FROM receipts "
            "WHERE owner = ? AND flow = ? AND issue_ns >= ? "
            "AND (free_runs > 0 OR free_tokens > 0 OR free_seconds != '0')",
            (owner, flow, since_ns),
        ) as c:
            async for runs, seconds, tokens in c:
                total = total + FreeUsed(runs, Decimal(seconds), tokens)
        return total
