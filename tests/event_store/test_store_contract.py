"""One contract for every EventStore: the same tests run against the in-memory and the SQLite
store (an abstract class with `store_factory`, one tiny subclass per store)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2
from kodosumid.event_store import (
    REPLAY_PAGE_BYTES,
    DuplicateExecution,
    EventStore,
    ExecutionRecord,
    MemoryEventStore,
    SqliteEventStore,
    StatusChange,
)
from tests.event_store.helpers import (
    FakeClock,
    event,
    inputs_event,
    inputs_event_in_reverse_key_order,
    record,
)
from tests.event_store.usage_contract import UsageContract

S = event_pb2
RUNNING = S.EXECUTION_STATUS_RUNNING
SUCCEEDED = S.EXECUTION_STATUS_SUCCEEDED
FAILED = S.EXECUTION_STATUS_FAILED
PENDING = S.EXECUTION_STATUS_PENDING


class StoreContract(UsageContract):
    """Subclasses say how to make a fresh store; every test here must hold for each of them
    (and those of `UsageContract`, the usage part)."""

    async def store_factory(self, tmp_path: Path, clock: FakeClock) -> EventStore:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, tmp_path: Path, clock: FakeClock) -> AsyncIterator[EventStore]:
        store = await self.store_factory(tmp_path, clock)
        await store.open()
        yield store
        await store.close()

    async def test_an_empty_store(self, store: EventStore) -> None:
        assert await store.get_execution("x") is None
        assert await store.read_page("x", 0) == []
        assert await store.read_events("x", 0) == []
        page = await store.list_executions(owner=None)
        assert (page.executions, page.next_token) == ([], "")
        assert await store.unfinished() == []
        assert await store.ended_before(2**62) == []
        assert await store.integrity_check() == "ok"

    async def test_create_keeps_the_row_and_the_first_events(self, store: EventStore) -> None:
        inputs = {"name": "Zoë", "count": 3, "nested": {"list": [1, 2.5, None, True]}}
        first = [event("a", 1, "pending"), event("a", 2, "inputs")]
        await store.create_execution(record("a", inputs=inputs), first)
        got = await store.get_execution("a")
        assert got == record("a", inputs=inputs, last_seq=2)
        assert isinstance(got.inputs["count"], int)  # ints stay ints
        assert await store.read_events("a", 0) == [(1, first[0]), (2, first[1])]

    async def test_stored_bytes_sum_the_events_of_an_owner(self, store: EventStore) -> None:
        bob = "spiffe://test.kodosumi/user/bob"
        await store.create_execution(record("a"), [event("a", 1, "x" * 10)])
        await store.create_execution(record("b", owner=bob), [event("b", 1)])
        await store.append({"a": (2, [event("a", 2, "y" * 20)])}, {})
        alice = record("a").owner
        expected = len(event("a", 1, "x" * 10)) + len(event("a", 2, "y" * 20))
        assert await store.stored_bytes(alice) == expected
        assert await store.stored_bytes(bob) == len(event("b", 1))
        assert await store.stored_bytes("nobody") == 0
        await store.delete_executions(["a"])
        assert await store.stored_bytes(alice) == 0
        # A launch's inputs count once, however the store keeps them.
        inputs = {"text": "z" * 10_000}
        await store.create_execution(
            record("c", inputs=inputs), [event("c", 1), inputs_event("c", inputs)]
        )
        full = len(event("c", 1)) + len(inputs_event("c", inputs))
        assert full - 100 <= await store.stored_bytes(alice) <= full + 100

    async def test_the_stored_inputs_do_not_follow_the_callers_dict(
        self, store: EventStore
    ) -> None:
        inputs = {"name": "a"}
        await store.create_execution(record("a", inputs=inputs), [])
        inputs["name"] = "changed"
        assert (await store.get_execution("a")).inputs == {"name": "a"}  # type: ignore[union-attr]

    async def test_an_execution_id_is_created_once(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [event("a", 1)])
        with pytest.raises(DuplicateExecution):
            await store.create_execution(record("a", flow="other"), [event("a", 1, "again")])
        assert (await store.get_execution("a")).flow == "hello"  # type: ignore[union-attr]
        assert await store.read_events("a", 0) == [(1, event("a", 1))]

    async def test_append_is_gapless_and_moves_last_seq(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [event("a", 1)])
        await store.append({"a": (2, [event("a", 2), event("a", 3)])}, {})
        await store.append({"a": (4, [event("a", 4)])}, {})
        assert [seq for seq, _ in await store.read_events("a", 0)] == [1, 2, 3, 4]
        assert (await store.get_execution("a")).last_seq == 4  # type: ignore[union-attr]
        assert [seq for seq, _ in await store.read_events("a", 2)] == [3, 4]

    async def test_a_batch_seen_twice_is_ignored_by_seq(self, store: EventStore) -> None:
        """A node that crashed after storing, before acknowledging, gets the batch again."""
        await store.create_execution(record("a"), [event("a", 1)])
        await store.append({"a": (2, [event("a", 2), event("a", 3)])}, {})
        await store.append(
            {"a": (2, [event("a", 2, "resent"), event("a", 3, "resent"), event("a", 4)])}, {}
        )
        assert await store.read_events("a", 0) == [
            (1, event("a", 1)),
            (2, event("a", 2)),
            (3, event("a", 3)),
            (4, event("a", 4)),
        ]
        # An older batch again never moves last_seq back.
        await store.append({"a": (2, [event("a", 2)])}, {})
        assert (await store.get_execution("a")).last_seq == 4  # type: ignore[union-attr]

    async def test_one_append_writes_several_executions(self, store: EventStore) -> None:
        for eid in "ab":
            await store.create_execution(record(eid), [event(eid, 1)])
        await store.append(
            {"a": (2, [event("a", 2)]), "b": (2, [event("b", 2), event("b", 3)])},
            {"b": [StatusChange(3, RUNNING, "")]},
        )
        a, b = await store.get_execution("a"), await store.get_execution("b")
        assert (a.last_seq, a.status) == (2, PENDING)  # type: ignore[union-attr]
        assert (b.last_seq, b.status) == (3, RUNNING)  # type: ignore[union-attr]

    async def test_status_changes_set_times_once(self, store: EventStore, clock: FakeClock) -> None:
        await store.create_execution(record("a"), [event("a", 1)])
        clock.now = 5_000
        await store.append({"a": (2, [event("a", 2)])}, {"a": [StatusChange(2, RUNNING, "go")]})
        got = await store.get_execution("a")
        assert (got.status, got.status_reason, got.start_ns, got.end_ns) == (  # type: ignore[union-attr]
            RUNNING,
            "go",
            5_000,
            0,
        )
        assert not got.terminal  # type: ignore[union-attr]
        clock.now = 6_000  # RUNNING again (after AWAITING_INPUT): the start stays
        await store.append(
            {"a": (3, [event("a", 3), event("a", 4)])},
            {
                "a": [
                    StatusChange(3, S.EXECUTION_STATUS_AWAITING_INPUT, ""),
                    StatusChange(4, RUNNING, ""),
                ]
            },
        )
        assert (await store.get_execution("a")).start_ns == 5_000  # type: ignore[union-attr]

    async def test_a_terminal_status_updates_the_row(
        self, store: EventStore, clock: FakeClock
    ) -> None:
        await store.create_execution(record("a"), [event("a", 1)])
        clock.now = 7_000
        await store.append(
            {"a": (2, [event("a", 2)])}, {"a": [StatusChange(2, FAILED, "boom: it broke")]}
        )
        got = await store.get_execution("a")
        assert got is not None and got.terminal
        assert (got.status, got.status_reason, got.end_ns, got.last_seq) == (
            FAILED,
            "boom: it broke",
            7_000,
            2,
        )

    async def test_executor_and_attempt_columns(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [])
        await store.set_executor("a", "kodo-s-1")
        await store.set_attempt("a", 3)
        await store.set_executor("unknown", "x")  # nothing to update: no error
        got = await store.get_execution("a")
        assert (got.executor, got.attempt) == ("kodo-s-1", 3)  # type: ignore[union-attr]

    async def test_a_record_keeps_every_field(self, store: EventStore) -> None:
        full = ExecutionRecord(
            execution_id="a",
            flow="f",
            owner="spiffe://t/user/u",
            status=S.EXECUTION_STATUS_STARTING,
            status_reason="why",
            inputs={"k": ["v"]},
            create_ns=123,
            start_ns=4,
            end_ns=5,
            last_seq=0,
            attempt=2,
            executor="peer:b",
            node_id="n",
            trace_id="t" * 32,
            parent_execution_id="p",
            placement='{"labels":{"host":"h2"},"node":"","resources":{}}',
        )
        await store.create_execution(full, [])
        assert await store.get_execution("a") == full

    async def test_the_inputs_event_replays_as_emitted(self, store: EventStore) -> None:
        inputs = {"text": "x" * 50_000, "n": 3, "nested": {"b": [1, 2.5], "a": "Zoë"}}
        first = [event("a", 1), inputs_event("a", inputs), event("a", 3)]
        await store.create_execution(record("a", inputs=inputs), first)
        assert await store.read_events("a", 0) == [(1, first[0]), (2, first[1]), (3, first[2])]
        assert await store.read_page("a", 1, max_events=1) == [(2, first[1])]
        # A page bounded by bytes counts the inputs the event shows.
        assert await store.read_page("a", 0, max_bytes=1000) == [(1, first[0])]
        assert (await store.get_execution("a")).inputs == inputs  # type: ignore[union-attr]

    async def test_an_inputs_event_in_another_map_order_replays_byte_for_byte(
        self, store: EventStore
    ) -> None:
        """Protobuf may write a Struct's entries in any order (hash-table order); an inputs
        event not in the deterministic (sorted) order is kept as it came, never rebuilt."""
        unsorted = inputs_event_in_reverse_key_order("a", {"a": 2, "b": 1})
        parsed = event_pb2.Event.FromString(unsorted)
        assert parsed.SerializeToString(deterministic=True) != unsorted
        await store.create_execution(
            record("a", inputs={"a": 2, "b": 1}), [event("a", 1), unsorted]
        )
        assert await store.read_events("a", 0) == [(1, event("a", 1)), (2, unsorted)]

    async def test_an_inputs_event_that_differs_from_the_row_is_kept_whole(
        self, store: EventStore
    ) -> None:
        other = inputs_event("a", {"name": "not the row's"})
        await store.create_execution(record("a", inputs={"name": "row"}), [event("a", 1), other])
        assert await store.read_events("a", 0) == [(1, event("a", 1)), (2, other)]
        empty = inputs_event("b", {})
        await store.create_execution(record("b", inputs={}), [event("b", 1), empty])
        assert await store.read_events("b", 1) == [(2, empty)]

    # -- replay pages -----------------------------------------------------------------------

    async def test_pages_are_bounded_by_count(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [event("a", i) for i in range(1, 11)])
        page = await store.read_page("a", 3, max_events=4, max_bytes=REPLAY_PAGE_BYTES)
        assert [seq for seq, _ in page] == [4, 5, 6, 7]

    async def test_pages_are_bounded_by_bytes(self, store: EventStore) -> None:
        big = [event("a", i, "x" * 1000) for i in range(1, 11)]
        await store.create_execution(record("a"), big)
        size = len(big[0])
        page = await store.read_page("a", 0, max_events=100, max_bytes=3 * size + 10)
        assert [seq for seq, _ in page] == [1, 2, 3]
        # An event larger than the bound still comes, alone: the reader makes progress.
        page = await store.read_page("a", 5, max_events=100, max_bytes=10)
        assert page == [(6, big[5])]

    async def test_pages_read_one_after_another_cover_the_stream_once(
        self, store: EventStore
    ) -> None:
        events = [event("a", i, "y" * (i * 37 % 500)) for i in range(1, 200)]
        await store.create_execution(record("a"), events[:50])
        await store.append({"a": (51, events[50:])}, {})
        seen: list[bytes] = []
        cursor = 0
        while page := await store.read_page("a", cursor, max_events=17, max_bytes=2000):
            assert [seq for seq, _ in page] == list(range(cursor + 1, cursor + 1 + len(page)))
            assert sum(len(d) for _, d in page) <= 2000 or len(page) == 1
            seen += [d for _, d in page]
            cursor = page[-1][0]
        assert seen == events

    async def test_large_drained_batches_page_in_order_from_any_seq(
        self, store: EventStore
    ) -> None:
        """Batches of several MiB, a single event larger than a MiB, reads starting anywhere."""
        await store.create_execution(record("a"), [event("a", 1), event("a", 2)])
        first = [event("a", seq, f"{seq:05d}" + "p" * 1000) for seq in range(3, 3003)]
        huge = event("a", 3003, "h" * 1_500_000)
        last = [event("a", seq, "tail") for seq in range(3004, 3010)]
        await store.append({"a": (3, first)}, {})
        await store.append({"a": (3003, [huge, *last])}, {})
        expected = [event("a", 1), event("a", 2), *first, huge, *last]
        for start in (0, 1, 2, 3, 700, 1500, 3002, 3003, 3009):
            seen, cursor = [], start
            while page := await store.read_page("a", cursor, max_events=400, max_bytes=100_000):
                assert len(page) <= 400
                assert sum(len(d) for _, d in page) <= 100_000 or len(page) == 1
                assert [s for s, _ in page] == list(range(cursor + 1, cursor + 1 + len(page)))
                seen += [d for _, d in page]
                cursor = page[-1][0]
            assert seen == expected[start:], f"from {start}"
        # A resend from the middle of a stored batch adds only what is new.
        await store.append({"a": (1500, [*expected[1499:3009], event("a", 3010)])}, {})
        assert await store.read_page("a", 3008, max_events=10) == [
            (3009, expected[3008]),
            (3010, event("a", 3010)),
        ]
        assert (await store.get_execution("a")).last_seq == 3010  # type: ignore[union-attr]

    async def test_the_default_read_is_bounded_by_bytes(self, store: EventStore) -> None:
        big = [event("a", i, "z" * 300_000) for i in range(1, 9)]
        await store.create_execution(record("a"), big)
        page = await store.read_events("a", 0)
        assert 1 <= len(page) < len(big)
        assert sum(len(d) for _, d in page) <= REPLAY_PAGE_BYTES

    async def test_reads_past_the_end_are_empty(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [event("a", 1)])
        assert await store.read_page("a", 1) == []
        assert await store.read_page("a", 2**63 - 1) == []
        assert await store.read_page("b", 0) == []

    # -- listing ----------------------------------------------------------------------------

    async def test_listing_is_newest_first_and_keyset_paged(self, store: EventStore) -> None:
        for i in range(7):
            await store.create_execution(record(f"e{i}", create_ns=1000 + i // 2), [])
        ids: list[str] = []
        token = ""
        while True:
            page = await store.list_executions(owner=None, page_size=3, page_token=token)
            ids += [r.execution_id for r in page.executions]
            token = page.next_token
            if not token:
                break
        assert ids == ["e6", "e5", "e4", "e3", "e2", "e1", "e0"]

    async def test_a_full_last_page_has_no_token(self, store: EventStore) -> None:
        for i in range(3):
            await store.create_execution(record(f"e{i}", create_ns=i), [])
        page = await store.list_executions(owner=None, page_size=3)
        assert len(page.executions) == 3 and page.next_token == ""

    async def test_listing_filters_by_owner_status_and_flow(self, store: EventStore) -> None:
        await store.create_execution(record("a", owner="u1", flow="f"), [])
        await store.create_execution(record("b", owner="u2", flow="f", create_ns=2), [])
        await store.create_execution(record("c", owner="u1", flow="g", create_ns=3), [])
        await store.append({"c": (1, [event("c", 1)])}, {"c": [StatusChange(1, RUNNING, "")]})

        async def ids(**query: object) -> list[str]:
            page = await store.list_executions(**query)  # type: ignore[arg-type]
            return [r.execution_id for r in page.executions]

        assert await ids(owner="u1") == ["c", "a"]
        assert await ids(owner=None, flow="f") == ["b", "a"]
        assert await ids(owner=None, statuses=[RUNNING]) == ["c"]
        assert await ids(owner=None, statuses=[PENDING, RUNNING]) == ["c", "b", "a"]
        assert await ids(owner="u2", flow="g") == []

    async def test_pages_are_bounded_by_bytes_and_continue(self, store: EventStore) -> None:
        for i in range(6):
            await store.create_execution(
                record(f"e{i}", create_ns=i, inputs={"text": "x" * 10_000}), []
            )
        page = await store.list_executions(owner=None, page_size=50, max_bytes=25_000)
        assert [r.execution_id for r in page.executions] == ["e5", "e4"]
        assert page.next_token
        rest = await store.list_executions(
            owner=None, page_size=50, max_bytes=25_000, page_token=page.next_token
        )
        assert [r.execution_id for r in rest.executions] == ["e3", "e2"]
        assert rest.executions[0].inputs == {"text": "x" * 10_000}
        # One execution larger than the bound still comes, alone.
        one = await store.list_executions(owner=None, max_bytes=100)
        assert [r.execution_id for r in one.executions] == ["e5"] and one.next_token

    async def test_a_token_not_issued_here_is_invalid_argument(self, store: EventStore) -> None:
        for bad in ("!!!", "bm90IGEgdG9rZW4=", "LTE6eA==", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5Ong="):
            with pytest.raises(InvalidArgument) as raised:
                await store.list_executions(owner=None, page_token=bad)
            assert raised.value.violations[0].field == "page_token"

    async def test_ids_are_data_not_sql(self, store: EventStore) -> None:
        hostile = "a'; DROP TABLE events; --"
        await store.create_execution(record(hostile, owner="o' OR '1'='1"), [event(hostile, 1)])
        assert await store.list_executions(owner="o") == await store.list_executions(owner="x")
        assert await store.read_events(hostile, 0) == [(1, event(hostile, 1))]

    # -- recovery and retention -------------------------------------------------------------

    async def test_unfinished_lists_what_a_restart_must_resume(self, store: EventStore) -> None:
        for eid in "abc":
            await store.create_execution(record(eid), [event(eid, 1)])
        await store.append({"b": (2, [event("b", 2)])}, {"b": [StatusChange(2, SUCCEEDED, "")]})
        await store.append({"c": (2, [event("c", 2)])}, {"c": [StatusChange(2, RUNNING, "")]})
        assert sorted(r.execution_id for r in await store.unfinished()) == ["a", "c"]

    async def test_retention_finds_old_ends_and_deletes_everything(
        self, store: EventStore, clock: FakeClock
    ) -> None:
        for i, eid in enumerate("abcd"):
            await store.create_execution(record(eid, create_ns=i), [event(eid, 1)])
        for at, eid in ((300, "c"), (100, "a"), (200, "b")):
            clock.now = at
            await store.append({eid: (2, [event(eid, 2)])}, {eid: [StatusChange(2, FAILED, "")]})
        assert await store.ended_before(250) == ["a", "b"]
        assert await store.ended_before(1000, limit=1) == ["a"]
        await store.delete_executions(["a", "b", "unknown"])
        assert await store.get_execution("a") is None
        assert await store.read_events("a", 0) == []
        assert await store.ended_before(1000) == ["c"]
        page = await store.list_executions(owner=None)
        assert [r.execution_id for r in page.executions] == ["d", "c"]
        await store.delete_executions([])

    async def test_ended_since_lists_newest_ends_first_bounded(
        self, store: EventStore, clock: FakeClock
    ) -> None:
        for i, eid in enumerate("abcd"):
            await store.create_execution(record(eid, flow=f"f{i % 2}"), [event(eid, 1)])
        for at, eid, status in ((100, "a", FAILED), (200, "b", SUCCEEDED), (300, "c", RUNNING)):
            clock.now = at
            await store.append({eid: (2, [event(eid, 2)])}, {eid: [StatusChange(2, status, "")]})
        ended = await store.ended_since(50, limit=10)
        assert [(r.flow, r.status, r.end_ns) for r in ended] == [
            ("f1", SUCCEEDED, 200),
            ("f0", FAILED, 100),
        ]
        assert [r.end_ns for r in await store.ended_since(150, limit=10)] == [200]
        assert [r.end_ns for r in await store.ended_since(0, limit=1)] == [200]

    async def test_a_deleted_id_can_be_used_again(self, store: EventStore) -> None:
        await store.create_execution(record("a"), [event("a", 1, "old")])
        await store.delete_executions(["a"])
        await store.create_execution(record("a"), [event("a", 1, "new")])
        assert await store.read_events("a", 0) == [(1, event("a", 1, "new"))]


class TestMemoryEventStore(StoreContract):
    async def store_factory(self, tmp_path: Path, clock: FakeClock) -> EventStore:
        return MemoryEventStore(clock=clock)


async def _stored_bytes(store: SqliteEventStore) -> int:
    """Pages in use (the file less its free pages): what the data costs to keep."""
    async with store.db.execute("PRAGMA page_count") as cursor:
        pages = (await cursor.fetchone())[0]  # type: ignore[index]
    async with store.db.execute("PRAGMA freelist_count") as cursor:
        free = (await cursor.fetchone())[0]  # type: ignore[index]
    async with store.db.execute("PRAGMA page_size") as cursor:
        size = (await cursor.fetchone())[0]  # type: ignore[index]
    return int((pages - free) * size)


_EARLIER_SCHEMA = """
CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY, flow TEXT NOT NULL, owner TEXT NOT NULL,
    status INTEGER NOT NULL, status_reason TEXT NOT NULL DEFAULT '',
    inputs TEXT NOT NULL DEFAULT '{}', create_ns INTEGER NOT NULL,
    start_ns INTEGER NOT NULL DEFAULT 0, end_ns INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 1,
    executor TEXT NOT NULL DEFAULT '', node_id TEXT NOT NULL DEFAULT '',
    trace_id TEXT NOT NULL DEFAULT '', parent_execution_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE events (
    execution_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""


class TestSqliteEventStore(StoreContract):
    async def store_factory(self, tmp_path: Path, clock: FakeClock) -> EventStore:
        return SqliteEventStore(tmp_path / "state" / "events.sqlite", clock=clock)

    async def test_what_was_stored_survives_a_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "events.sqlite"
        store = SqliteEventStore(path)
        await store.open()
        await store.create_execution(record("a", inputs={"n": 1}), [event("a", 1)])
        await store.append({"a": (2, [event("a", 2)])}, {"a": [StatusChange(2, SUCCEEDED, "")]})
        await store.close()
        store = SqliteEventStore(path)
        await store.open()
        try:
            got = await store.get_execution("a")
            assert got is not None and got.terminal and got.inputs == {"n": 1}
            assert len(await store.read_events("a", 0)) == 2
            assert await store.integrity_check() == "ok"
        finally:
            await store.close()

    async def test_a_write_cancelled_at_its_begin_leaves_no_transaction_open(
        self, tmp_path: Path
    ) -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite")
        await store.open()
        try:
            task = asyncio.create_task(store.create_execution(record("a"), [event("a", 1)]))
            await asyncio.sleep(0)  # one step: the write holds the lock, BEGIN is queued
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await store.create_execution(record("b"), [event("b", 1)])
            assert await store.get_execution("a") is None
            assert await store.get_execution("b") is not None
        finally:
            await store.close()

    async def test_a_launch_stores_its_inputs_once(self, tmp_path: Path) -> None:
        """Issue 11: inputs were kept in the row and the event, and every status update
        rewrote the row's copy (SQLite rewrites a whole row): 3x the inputs on disk."""
        store = SqliteEventStore(tmp_path / "events.sqlite")
        await store.open()
        try:
            await store.create_execution(record("warm"), [event("warm", 1)])
            before = await _stored_bytes(store)
            inputs = {"text": "y" * 2_000_000}
            await store.create_execution(
                record("a", inputs=inputs), [event("a", 1), inputs_event("a", inputs)]
            )
            for seq in range(3, 40):
                status = RUNNING if seq < 39 else SUCCEEDED
                await store.append(
                    {"a": (seq, [event("a", seq)])}, {"a": [StatusChange(seq, status, "")]}
                )
            growth = await _stored_bytes(store) - before
            assert growth <= 1.2 * 2_000_000, f"{growth / 2_000_000:.2f}x the inputs"
        finally:
            await store.close()

    async def test_a_database_of_an_earlier_node_opens_and_reads(self, tmp_path: Path) -> None:
        path = tmp_path / "events.sqlite"
        with sqlite3.connect(path) as db:
            db.executescript(_EARLIER_SCHEMA)
            db.execute(
                "INSERT INTO executions (execution_id, flow, owner, status, inputs, create_ns, "
                "last_seq) VALUES ('old', 'hello', 'u', ?, ?, 5, 2)",
                (PENDING, json.dumps({"name": "old"})),
            )
            db.executemany(
                "INSERT INTO events VALUES ('old', ?, ?)",
                [(1, event("old", 1)), (2, inputs_event("old", {"name": "old"}))],
            )
        store = SqliteEventStore(path)
        await store.open()
        try:
            got = await store.get_execution("old")
            assert got is not None and got.inputs == {"name": "old"} and got.placement == ""
            assert (await store.read_events("old", 1))[0][1] == inputs_event("old", {"name": "old"})
            page = await store.list_executions(owner=None, max_bytes=1)
            assert page.executions == [got]
            # Its stream goes on after the upgrade, read as one.
            await store.append({"old": (3, [event("old", 3), event("old", 4)])}, {})
            assert [seq for seq, _ in await store.read_events("old", 0)] == [1, 2, 3, 4]
            assert [seq for seq, _ in await store.read_page("old", 1, max_events=2)] == [2, 3]
            await store.create_execution(record("new", inputs={"n": 1}, create_ns=6), [])
            assert [r.inputs for r in await store.unfinished()] in (
                [{"name": "old"}, {"n": 1}],
                [{"n": 1}, {"name": "old"}],
            )
        finally:
            await store.close()

    def test_an_unknown_synchronous_mode_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="synchronous"):
            SqliteEventStore(tmp_path / "e.sqlite", synchronous="SOMETIMES")
