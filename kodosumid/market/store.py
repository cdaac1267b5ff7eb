"""The contract store interface: quotes and receipts of this node.

Two implementations hold it (`memory_store.MemoryContractStore`, `sqlite_store.SqliteContractStore`)
and one contract suite (`tests/market/test_contract_store.py`) runs against both.

`claim` is the one write that must be atomic: a quote is used by at most one execution, even
when launches race for it.
"""

from __future__ import annotations

from typing import Protocol

from kodosumi.charges import FreeUsed
from kodosumid.market.model import StoredQuote, StoredReceipt


class ContractStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put_quote(self, quote: StoredQuote) -> None:
        """Keep a new quote (its id is new)."""
        ...

    async def get_quote(self, quote_id: str) -> StoredQuote | None: ...

    async def quote_of(self, execution_id: str) -> StoredQuote | None:
        """The quote `execution_id` was launched with, if any."""
        ...

    async def claim(self, quote_id: str, execution_id: str) -> bool:
        """Mark the quote used by `execution_id`; False when it is used already."""
        ...

    async def release(self, quote_id: str, execution_id: str) -> None:
        """Undo `claim` (the launch it was for did not happen)."""
        ...

    async def open_quotes(self, requester: str, now_ns: int) -> int:
        """Unused, unexpired quotes of `requester` (bounded per identity)."""
        ...

    async def purge_quotes(self, expired_before_ns: int) -> int:
        """Delete unused quotes that expired before `expired_before_ns`; how many."""
        ...

    async def put_receipt(self, receipt: StoredReceipt) -> StoredReceipt:
        """Keep a receipt; an execution has one: the one kept first is returned."""
        ...

    async def get_receipt(self, execution_id: str) -> StoredReceipt | None: ...

    async def unreceipted(self, limit: int = 500) -> list[str]:
        """Executions launched with a quote that have no receipt yet (a node that stopped
        between a run's end and its receipt issues them when it starts again)."""
        ...

    async def free_used(self, owner: str, flow: str, since_ns: int) -> FreeUsed:
        """What `owner`'s receipts of `flow` issued since `since_ns` took of its allowance."""
        ...
