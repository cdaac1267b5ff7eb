"""A `ContractStore` in memory (domain tests, throwaway nodes)."""

from __future__ import annotations

from dataclasses import replace

from kodosumi.charges import FreeUsed
from kodosumid.market.model import StoredQuote, StoredReceipt


class MemoryContractStore:
    def __init__(self) -> None:
        self._quotes: dict[str, StoredQuote] = {}
        self._receipts: dict[str, StoredReceipt] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put_quote(self, quote: StoredQuote) -> None:
        self._quotes[quote.quote_id] = quote

    async def get_quote(self, quote_id: str) -> StoredQuote | None:
        return self._quotes.get(quote_id)

    async def quote_of(self, execution_id: str) -> StoredQuote | None:
        if not execution_id:
            return None
        return next((q for q in self._quotes.values() if q.execution_id == execution_id), None)

    async def claim(self, quote_id: str, execution_id: str) -> bool:
        quote = self._quotes.get(quote_id)
        if quote is None or quote.execution_id:
            return False
        self._quotes[quote_id] = replace(quote, execution_id=execution_id)
        return True

    async def release(self, quote_id: str, execution_id: str) -> None:
        quote = self._quotes.get(quote_id)
        if quote is not None and quote.execution_id == execution_id:
            self._quotes[quote_id] = replace(quote, execution_id="")

    async def open_quotes(self, requester: str, now_ns: int) -> int:
        return sum(
            1
            for q in self._quotes.values()
            if q.requester == requester and not q.execution_id and q.expire_ns > now_ns
        )

    async def purge_quotes(self, expired_before_ns: int) -> int:
        gone = [
            q.quote_id
            for q in self._quotes.values()
            if not q.execution_id and q.expire_ns < expired_before_ns
        ]
        for quote_id in gone:
            del self._quotes[quote_id]
        return len(gone)

    async def put_receipt(self, receipt: StoredReceipt) -> StoredReceipt:
        return self._receipts.setdefault(receipt.execution_id, receipt)

    async def get_receipt(self, execution_id: str) -> StoredReceipt | None:
        return self._receipts.get(execution_id)

    async def unreceipted(self, limit: int = 500) -> list[str]:
        used = sorted(q.execution_id for q in self._quotes.values() if q.execution_id)
        return [e for e in used if e not in self._receipts][:limit]

    async def free_used(self, owner: str, flow: str, since_ns: int) -> FreeUsed:
        total = FreeUsed()
        for r in self._receipts.values():
            if r.owner == owner and r.flow == flow and r.issue_ns >= since_ns:
                total = total + r.free
        return total
