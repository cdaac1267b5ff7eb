"""One contract for every RegistryStore: the same tests run against the in-memory and the
SQLite store (an abstract class with `store_factory`, one tiny subclass per store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from registryd.errors import RevisionCompacted
from registryd.memory_store import MemoryStore
from registryd.model import (
    ChangeDraft,
    ChangeKind,
    LeaseState,
    NodeLoad,
    NodeQuery,
    NodeRecord,
    NodeState,
)
from registryd.sqlite_store import SqliteStore
from registryd.store import RegistryStore
from tests.registry.helpers import flow

T0 = 1_700_000_000.25


def node(
    node_id: str,
    flows: tuple[tuple[str, tuple[str, ...]], ...] = (("hello", ("demo",)),),
    *,
    state: NodeState = NodeState.ONLINE,
    revision: int = 0,
) -> NodeRecord:
    return NodeRecord(
        node_id=node_id,
        identity=f"spiffe://test.kodosumi/node/{node_id}",
        endpoints=("127.0.0.1:7450", "[::1]:7450"),
        flows=tuple(flow(node_id, name, *tags) for name, tags in flows),
        version="0.1.0",
        capabilities=("crewai", "yaml"),
        state=state,
        state_reason="registered",
        load=NodeLoad(running_executions=2, uptime_seconds=12.5, load_average=0.75),
        first_registered_at=T0,
        state_changed_at=T0,
        last_heartbeat_at=T0 + 1.5,
        lease_expires_at=T0 + 31.5,
        heartbeat_interval=10.0,
        revision=revision,
    )


def online(at: float = T0) -> list[ChangeDraft]:
    return [ChangeDraft(ChangeKind.NODE_ONLINE, at)]


class StoreContract:
    """Subclasses say how to make a fresh store; every test here must hold for each of them."""

    async def store_factory(self, tmp_path: Path) -> RegistryStore:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[RegistryStore]:
        store = await self.store_factory(tmp_path)
        yield store
        await store.close()

    async def test_an_empty_store(self, store: RegistryStore) -> None:
        assert await store.get_node("a") is None
        assert await store.list_nodes() == []
        assert await store.revision() == 0
        assert await store.compacted_revision() == 0
        assert await store.changes_after(0, 10) == []

    async def test_commit_numbers_changes_and_stamps_the_node(self, store: RegistryStore) -> None:
        a = node("a", (("hello", ("demo",)), ("search", ("web", "demo"))))
        drafts = [
            ChangeDraft(ChangeKind.NODE_ONLINE, T0),
            *(ChangeDraft(ChangeKind.FLOW_ADDED, T0, f) for f in a.flows),
        ]
        saved, changes = await store.commit(a, drafts)
        assert [c.revision for c in changes] == [1, 2, 3]
        assert saved == replace(a, revision=3)
        assert await store.revision() == 3
        node_change, *flow_changes = changes
        assert node_change.node == replace(a, flows=(), revision=1)
        assert node_change.flow is None
        assert [c.flow for c in flow_changes] == list(a.flows)
        assert all(c.node is None and c.node_id == "a" for c in flow_changes)
        assert await store.changes_after(0, 10) == changes

    async def test_a_node_reads_back_exactly(self, store: RegistryStore) -> None:
        a = node("a", (("zeta", ("x",)), ("alpha", ()), ("mid", ("x", "y"))))
        saved, _ = await store.commit(a, online())
        assert await store.get_node("a") == saved
        assert [f.name for f in saved.flows] == ["zeta", "alpha", "mid"]

    async def test_commit_without_changes_saves_but_keeps_the_revision(
        self, store: RegistryStore
    ) -> None:
        saved, _ = await store.commit(node("a"), online())
        again, changes = await store.commit(replace(saved, last_heartbeat_at=T0 + 5), [])
        assert changes == []
        assert again.revision == saved.revision == 1
        assert await store.revision() == 1
        stored = await store.get_node("a")
        assert stored is not None and stored.last_heartbeat_at == T0 + 5

    async def test_commit_replaces_the_flows(self, store: RegistryStore) -> None:
        await store.commit(node("a", (("one", ()), ("two", ()))), online())
        await store.commit(node("a", (("three", ("t",)),)), [])
        stored = await store.get_node("a")
        assert stored is not None
        assert [f.name for f in stored.flows] == ["three"]

    async def test_list_orders_by_node_id_and_filters(self, store: RegistryStore) -> None:
        await store.commit(node("c", (("search", ("web",)),)), online())
        await store.commit(node("a", (("hello", ("demo",)),)), online())
        await store.commit(
            node("b", (("hello", ("web",)), ("search", ("demo",))), state=NodeState.OFFLINE),
            online(),
        )
        await store.commit(node("d", (), state=NodeState.LEFT), online())

        async def ids(**query: object) -> list[str]:
            return [n.node_id for n in await store.list_nodes(NodeQuery(**query))]  # type: ignore[arg-type]

        assert await ids() == ["a", "b", "c", "d"]
        assert await ids(states=frozenset({NodeState.ONLINE})) == ["a", "c"]
        assert await ids(states=frozenset({NodeState.OFFLINE, NodeState.LEFT})) == ["b", "d"]
        assert await ids(flow_name="hello") == ["a", "b"]
        assert await ids(flow_tag="web") == ["b", "c"]
        # Flow filters match one flow with all of them, not several flows with one each.
        assert await ids(flow_name="hello", flow_tag="demo") == ["a"]
        assert await ids(flow_name="search", flow_tag="demo") == ["b"]
        assert await ids(flow_name="nope") == []
        assert await ids(after_node_id="b") == ["c", "d"]
        assert await ids(limit=2) == ["a", "b"]
        assert await ids(after_node_id="a", limit=2, states=frozenset({NodeState.ONLINE})) == ["c"]
        listed = await store.list_nodes()
        assert [n.flows for n in listed] == [
            (await store.get_node(i)).flows  # type: ignore[union-attr]
            for i in "abcd"
        ]

    async def test_save_leases_touches_only_lease_fields(self, store: RegistryStore) -> None:
        saved, _ = await store.commit(node("a"), online())
        load = NodeLoad(pending_executions=1, running_executions=7, uptime_seconds=99.5)
        await store.save_leases(
            [
                LeaseState("a", T0 + 20, T0 + 50, 12.5, load),
                LeaseState("ghost", T0 + 20, T0 + 50, 12.5, load),
            ]
        )
        stored = await store.get_node("a")
        assert stored == replace(
            saved,
            last_heartbeat_at=T0 + 20,
            lease_expires_at=T0 + 50,
            heartbeat_interval=12.5,
            load=load,
        )
        assert await store.get_node("ghost") is None
        assert await store.revision() == 1

    async def test_changes_after_pages_in_order(self, store: RegistryStore) -> None:
        for name in "abcde":
            await store.commit(node(name), online())
        first = await store.changes_after(0, 2)
        second = await store.changes_after(first[-1].revision, 2)
        rest = await store.changes_after(second[-1].revision, 10)
        assert [c.node_id for c in first + second + rest] == list("abcde")
        assert [c.revision for c in first + second + rest] == [1, 2, 3, 4, 5]
        assert await store.changes_after(5, 10) == []

    async def test_changes_after_pages_are_bounded_in_bytes(self, store: RegistryStore) -> None:
        """Flow changes carry their specs: a page stops before its bytes pass the bound, and
        a change larger than the bound still comes, alone."""
        big = node("a", (("f1", ()), ("f2", ()), ("f3", ()), ("f4", ())))
        big = replace(big, flows=tuple(replace(f, spec=f.spec + b"x" * 40_000) for f in big.flows))
        drafts = [ChangeDraft(ChangeKind.FLOW_ADDED, T0, f) for f in big.flows]
        await store.commit(big, drafts)
        first = await store.changes_after(0, 64, 100_000)
        assert [c.revision for c in first] == [1, 2]
        assert [c.revision for c in await store.changes_after(2, 64, 10_000)] == [3]
        assert [c.revision for c in await store.changes_after(2, 64)] == [3, 4]

    async def test_compaction_drops_old_changes_and_refuses_to_replay_them(
        self, store: RegistryStore
    ) -> None:
        for name in "abcde":
            await store.commit(node(name), online())
        await store.compact(3)
        assert await store.compacted_revision() == 3
        assert await store.revision() == 5
        assert [c.revision for c in await store.changes_after(3, 10)] == [4, 5]
        with pytest.raises(RevisionCompacted):
            await store.changes_after(2, 10)
        await store.compact(1)  # never backwards
        assert await store.compacted_revision() == 3
        await store.compact(99)  # never beyond the log
        assert await store.compacted_revision() == 5
        assert await store.changes_after(5, 10) == []
        _, changes = await store.commit(node("f"), online())
        assert [c.revision for c in changes] == [6]
        # Nodes are never compacted away.
        assert len(await store.list_nodes()) == 6


class TestMemoryStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> RegistryStore:
        return MemoryStore()


class TestSqliteStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> RegistryStore:
        return await SqliteStore.open(tmp_path / "registry.sqlite")

    async def test_everything_survives_reopening(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.sqlite"
        store = await SqliteStore.open(path)
        saved, _ = await store.commit(node("a", (("x", ("t",)),)), online())
        for name in "bcd":
            await store.commit(node(name), online())
        await store.compact(2)
        await store.close()

        store = await SqliteStore.open(path)
        try:
            assert await store.get_node("a") == saved
            assert await store.revision() == 4
            assert await store.compacted_revision() == 2
            assert [c.node_id for c in await store.changes_after(2, 10)] == ["c", "d"]
            _, changes = await store.commit(node("e"), online())
            assert changes[0].revision == 5
        finally:
            await store.close()

    async def test_a_read_cancelled_at_its_begin_leaves_no_transaction_open(
        self, tmp_path: Path
    ) -> None:
        """A caller's deadline can cancel a read while its BEGIN is queued on the reader;
        every later read must still work (seen: the registry answered INTERNAL "cannot start
        a transaction within a transaction" to every read after a partition)."""
        store = await SqliteStore.open(tmp_path / "registry.sqlite")
        try:
            saved, _ = await store.commit(node("a"), online())
            for read in (lambda: store.get_node("a"), store.list_nodes):
                task = asyncio.create_task(read())
                await asyncio.sleep(0)  # one step: the read holds the lock, BEGIN is queued
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await store.get_node("a") == saved
                assert await store.list_nodes() == [saved]
        finally:
            await store.close()

    async def test_the_revision_survives_compacting_everything(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.sqlite"
        store = await SqliteStore.open(path)
        for name in "ab":
            await store.commit(node(name), online())
        await store.compact(2)
        await store.close()
        store = await SqliteStore.open(path)
        try:
            assert (await store.revision(), await store.compacted_revision()) == (2, 2)
        finally:
            await store.close()

    async def test_a_failed_commit_leaves_nothing_behind(self, tmp_path: Path) -> None:
        store = await SqliteStore.open(tmp_path / "registry.sqlite")
        try:
            await store.commit(node("a"), online())
            twice = node("b", (("same", ()), ("same", ())))  # violates the flows primary key
            with pytest.raises(Exception, match="UNIQUE"):
                await store.commit(twice, online())
            assert await store.get_node("b") is None
            assert await store.revision() == 1
            assert len(await store.changes_after(0, 10)) == 1
            _, changes = await store.commit(node("c"), online())
            assert changes[0].revision == 2
        finally:
            await store.close()
