"""One contract for every ContractStore (quotes and receipts): the same tests against the
in-memory and the SQLite store, racing claims included."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from kodosumi.charges import FreeUsed
from kodosumid.market.memory_store import MemoryContractStore
from kodosumid.market.model import StoredQuote, StoredReceipt
from kodosumid.market.sqlite_store import SqliteContractStore
from kodosumid.market.store import ContractStore

ANN = "spiffe://t/user/ann"
BOB = "spiffe://t/user/bob"


def quote(quote_id: str = "q1", requester: str = ANN, expire_ns: int = 5_000) -> StoredQuote:
    return StoredQuote(quote_id, requester, "search", 1_000, expire_ns, f"token-{quote_id}")


def receipt(
    execution_id: str, owner: str = ANN, issue_ns: int = 2_000, **free: object
) -> StoredReceipt:
    return StoredReceipt(
        f"r-{execution_id}",
        execution_id,
        owner,
        "search",
        "",
        issue_ns,
        f"token-{execution_id}",
        FreeUsed(**free),  # type: ignore[arg-type]
    )


class StoreContract:
    async def store_factory(self, tmp_path: Path) -> ContractStore:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[ContractStore]:
        store = await self.store_factory(tmp_path)
        yield store
        await store.close()

    async def test_a_quote_is_kept_and_found(self, store: ContractStore) -> None:
        await store.put_quote(quote())
        assert await store.get_quote("q1") == quote()
        assert await store.get_quote("nope") is None
        assert await store.quote_of("") is None

    async def test_a_quote_is_claimed_once_even_when_launches_race(
        self, store: ContractStore
    ) -> None:
        await store.put_quote(quote())
        won = await asyncio.gather(*(store.claim("q1", f"e{i}") for i in range(20)))
        assert won.count(True) == 1
        winner = f"e{won.index(True)}"
        stored = await store.get_quote("q1")
        assert stored is not None and stored.execution_id == winner
        assert await store.quote_of(winner) == stored
        assert not await store.claim("unknown", "e9")

    async def test_a_released_claim_frees_the_quote(self, store: ContractStore) -> None:
        await store.put_quote(quote())
        assert await store.claim("q1", "e1")
        await store.release("q1", "other")  # not its claim: nothing happens
        assert not await store.claim("q1", "e2")
        await store.release("q1", "e1")
        assert await store.claim("q1", "e2")

    async def test_open_quotes_are_counted_and_expired_unused_ones_purged(
        self, store: ContractStore
    ) -> None:
        await store.put_quote(quote("q1", expire_ns=5_000))
        await store.put_quote(quote("q2", expire_ns=9_000))
        await store.put_quote(quote("q3", BOB, expire_ns=9_000))
        await store.put_quote(quote("q4", expire_ns=3_000))
        assert await store.claim("q4", "e4")
        assert await store.open_quotes(ANN, 4_000) == 2
        assert await store.open_quotes(ANN, 6_000) == 1
        assert await store.purge_quotes(6_000) == 1  # q1; q4 is used: kept with its run
        assert await store.get_quote("q1") is None
        assert await store.get_quote("q4") is not None

    async def test_an_execution_has_one_receipt(self, store: ContractStore) -> None:
        first = await store.put_receipt(receipt("e1"))
        again = await store.put_receipt(
            StoredReceipt("r-other", "e1", ANN, "search", "", 3_000, "token-other")
        )
        assert again == first == await store.get_receipt("e1")
        assert await store.get_receipt("e2") is None

    async def test_quoted_runs_without_a_receipt_are_listed(self, store: ContractStore) -> None:
        for quote_id in ("q1", "q2", "q3"):
            await store.put_quote(quote(quote_id))
        assert await store.claim("q1", "e1") and await store.claim("q2", "e2")
        await store.put_receipt(receipt("e1"))
        assert await store.unreceipted() == ["e2"]

    async def test_free_use_is_summed_per_owner_flow_and_period(self, store: ContractStore) -> None:
        await store.put_receipt(receipt("e1", runs=1))
        await store.put_receipt(receipt("e2", seconds=Decimal("1.5"), tokens=10))
        await store.put_receipt(receipt("e3", seconds=Decimal("0.25"), tokens=5))
        await store.put_receipt(receipt("e4", issue_ns=500, runs=1))  # an earlier period
        await store.put_receipt(receipt("e5", BOB, runs=1))
        assert await store.free_used(ANN, "search", 1_000) == FreeUsed(1, Decimal("1.75"), 15)
        assert await store.free_used(ANN, "other", 0) == FreeUsed()


class TestMemoryStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> ContractStore:
        return MemoryContractStore()


class TestSqliteStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> ContractStore:
        store = SqliteContractStore(tmp_path / "contracts.sqlite")
        await store.open()
        return store


async def test_the_sqlite_file_is_private(tmp_path: Path) -> None:
    store = SqliteContractStore(tmp_path / "contracts.sqlite")
    await store.open()
    await store.close()
    assert stat.S_IMODE((tmp_path / "contracts.sqlite").stat().st_mode) == 0o600
