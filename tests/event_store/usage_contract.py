"""The usage part of the event store contract (`StoreContract` inherits it, so the memory and
the SQLite store are held to it alike): attempts stored with a batch, read back, rolled up
over children, summed and grouped."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kodosumi.errors import InvalidArgument
from kodosumid.event_store import (
    AttemptUsage,
    EventStore,
    ModelUse,
    UsageQuery,
    UsageTotals,
)
from tests.event_store.helpers import event, record

BOB = "spiffe://test.kodosumi/user/bob"
DAY = 86_400 * 10**9
# 2026-12-05T00:00:00Z and a month before.
DEC_5 = 1_796_428_800 * 10**9
NOV_5 = DEC_5 - 30 * DAY


def attempt(n: int = 1, **kw: object) -> AttemptUsage:
    values: dict[str, object] = {
        "wall_seconds": 2.0,
        "cpu_seconds": 0.5,
        "llm_calls": 3,
        "tool_calls": 1,
        "input_bytes": 10,
        "output_bytes": 100,
        "artifact_bytes": 1000,
        "models": (ModelUse("m1", 2, 20, 5), ModelUse("m2", 1, 7, 3)),
        "at_ns": DEC_5,
        "node": "n1",
    }
    values.update(kw)
    return AttemptUsage(n, **values)  # type: ignore[arg-type]


class UsageContract:
    async def _run(
        self, store: EventStore, eid: str, *attempts: AttemptUsage, **kw: object
    ) -> None:
        await store.create_execution(replace(record(eid), **kw), [event(eid, 1)])  # type: ignore[arg-type]
        await store.append({eid: (2, [event(eid, 2)])}, {}, {eid: list(attempts)})

    async def test_attempts_are_stored_with_their_batch_and_read_back(
        self, store: EventStore
    ) -> None:
        assert await store.usage_of("a") == []
        first = attempt(1, groups=("g2", "g1"))
        second = attempt(2, source="node", note="executor died", models=())
        await self._run(store, "a", first)
        await store.append({"a": (3, [event("a", 3)])}, {}, {"a": [second]})
        got = await store.usage_of("a")
        assert got == [replace(first, groups=("g1", "g2")), replace(second, groups=("g1", "g2"))]
        totals = UsageTotals.of(got)
        assert (totals.runs, totals.attempts, totals.wall_seconds, totals.llm_calls) == (
            1,
            2,
            4.0,
            6,
        )
        assert totals.models == (ModelUse("m1", 2, 20, 5), ModelUse("m2", 1, 7, 3))

    async def test_groups_kept_at_launch_count_for_later_usage(self, store: EventStore) -> None:
        """A node restarted mid-run knows the owner's groups from the store, not from memory."""
        await store.create_execution(record("a"), [event("a", 1)], ("red", "blue"))
        assert await store.groups_of("a") == ("blue", "red")
        assert await store.groups_of("nope") == ()
        await store.append({"a": (2, [event("a", 2)])}, {}, {"a": [attempt(1)]})
        page = await store.summarize_usage(UsageQuery(group_by="group"))
        assert [r.key for r in page.rows] == ["blue", "red"]
        assert (await store.usage_of("a"))[0].groups == ("blue", "red")

    async def test_an_attempt_keeps_its_first_record(self, store: EventStore) -> None:
        """A batch re-sent after a crash, or the node's record after the engine's."""
        await self._run(store, "a", attempt(1))
        await store.append({}, {}, {"a": [attempt(1, wall_seconds=99.0, source="node")]})
        assert [a.wall_seconds for a in await store.usage_of("a")] == [2.0]

    async def test_usage_of_an_unknown_execution_is_skipped(self, store: EventStore) -> None:
        await store.append({}, {}, {"ghost": [attempt(1)]})
        assert await store.usage_of("ghost") == []
        page = await store.summarize_usage(UsageQuery())
        assert page.rows == []

    async def test_children_roll_up_at_any_depth(self, store: EventStore) -> None:
        await self._run(store, "root", attempt(1))
        await self._run(store, "child", attempt(1, llm_calls=10), parent_execution_id="root")
        await self._run(store, "grand", attempt(1, tool_calls=5), parent_execution_id="child")
        # A child still running (no usage yet) does not hide its own finished child.
        await store.create_execution(replace(record("open"), parent_execution_id="root"), [])
        await self._run(store, "deep", attempt(1, cpu_seconds=7.0), parent_execution_id="open")
        children = await store.children_usage("root")
        assert (children.runs, children.llm_calls, children.tool_calls) == (3, 16, 7)
        assert children.cpu_seconds == 8.0
        assert (await store.children_usage("grand")) == UsageTotals()
        # Usage outlives the execution's events: a deleted child still rolls up.
        await store.delete_executions(["child"])
        assert (await store.children_usage("root")).runs == 3
        assert len(await store.usage_of("child")) == 1

    async def test_summaries_group_by_each_key(self, store: EventStore) -> None:
        await self._run(store, "a", attempt(1, groups=("red",)), flow="f1")
        await self._run(store, "b", attempt(1, at_ns=NOV_5, node="n2"), flow="f2", owner=BOB)
        await self._run(
            store, "c", attempt(1, groups=("red", "blue")), attempt(2, groups=()), flow="f1"
        )

        async def keys(by: str, **kw: object) -> dict[str, tuple[int, int]]:
            page = await store.summarize_usage(UsageQuery(group_by=by, **kw))  # type: ignore[arg-type]
            return {r.key: (r.totals.runs, r.totals.attempts) for r in page.rows}

        alice = record("a").owner
        assert await keys("") == {"": (3, 4)}
        assert await keys("user") == {alice: (2, 3), BOB: (1, 1)}
        assert await keys("flow") == {"f1": (2, 3), "f2": (1, 1)}
        assert await keys("node") == {"n1": (2, 3), "n2": (1, 1)}
        assert await keys("day") == {"2026-11-05": (1, 1), "2026-12-05": (2, 3)}
        assert await keys("month") == {"2026-11": (1, 1), "2026-12": (2, 3)}
        assert await keys("execution") == {"a": (1, 1), "b": (1, 1), "c": (1, 2)}
        assert await keys("group") == {"": (1, 1), "blue": (1, 2), "red": (2, 3)}
        # Filters: owner, flow, node, group, period [since, until).
        assert await keys("", owner=BOB) == {"": (1, 1)}
        assert await keys("", flow="f1", node="n1") == {"": (2, 3)}
        assert await keys("flow", group="blue") == {"f1": (1, 2)}
        assert await keys("group", group="red") == {"red": (2, 3)}
        assert await keys("", since_ns=NOV_5 + 1) == {"": (2, 3)}
        assert await keys("", until_ns=DEC_5) == {"": (1, 1)}
        assert await keys("", since_ns=NOV_5, until_ns=NOV_5 + 1) == {"": (1, 1)}
        row = (await store.summarize_usage(UsageQuery(group_by="flow", flow="f1"))).rows[0]
        assert row.totals.models == (ModelUse("m1", 6, 60, 15), ModelUse("m2", 3, 21, 9))
        assert row.totals.input_tokens == 81 and row.totals.output_tokens == 24

    async def test_summaries_are_keyset_paged_and_byte_bounded(self, store: EventStore) -> None:
        for i in range(5):
            await self._run(store, f"e{i}", attempt(1))
        seen: list[str] = []
        token = ""
        while True:
            page = await store.summarize_usage(
                UsageQuery(group_by="execution", page_size=2, page_token=token)
            )
            seen += [r.key for r in page.rows]
            token = page.next_token
            if not token:
                break
        assert seen == [f"e{i}" for i in range(5)]
        small = await store.summarize_usage(UsageQuery(group_by="execution", max_bytes=1))
        assert [r.key for r in small.rows] == ["e0"] and small.next_token
        with pytest.raises(InvalidArgument) as caught:
            await store.summarize_usage(UsageQuery(page_token="bm90IG1pbmU="))
        assert caught.value.violations[0].field == "page_token"

    async def test_filter_values_are_data_not_sql(self, store: EventStore) -> None:
        await self._run(store, "a", attempt(1))
        page = await store.summarize_usage(UsageQuery(owner="x' OR '1'='1", flow="'; DROP"))
        assert page.rows == []
        assert len(await store.usage_of("a")) == 1
