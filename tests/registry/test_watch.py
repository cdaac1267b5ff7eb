"""The change log behind WatchRegistry, in the domain: replay, live follow, resume without gaps
or repeats, compaction and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kodosumi.errors import InvalidArgument
from registryd.clock import ManualClock
from registryd.errors import RegistryClosing, RevisionCompacted, RevisionInFuture
from registryd.memory_store import MemoryStore
from registryd.model import Change, ChangeKind
from registryd.registry import Registry
from tests.registry.helpers import announcement, node_principal


@pytest.fixture
async def registry(clock: ManualClock) -> Registry:
    registry = Registry(MemoryStore(), clock, change_retention=10)
    await registry.start()
    return registry


async def register(registry: Registry, node_id: str, *flows: str) -> None:
    await registry.register(
        node_principal(node_id), announcement(node_id, [(f, ()) for f in flows or ("hello",)])
    )


async def take(batches: AsyncIterator[list[Change]], count: int) -> list[Change]:
    """The next `count` changes of a watch (deadline: a hung watch fails, never blocks)."""
    got: list[Change] = []
    async with asyncio.timeout(10):
        while len(got) < count:
            got += await anext(batches)
    return got


async def test_a_watch_replays_then_follows(registry: Registry) -> None:
    await register(registry, "a", "x", "y")
    watch = await registry.open_watch(0)
    assert (watch.start_revision, watch.revision) == (0, 3)
    batches = aiter(watch)
    replayed = await take(batches, 3)
    assert [(c.revision, c.kind) for c in replayed] == [
        (1, ChangeKind.NODE_ONLINE),
        (2, ChangeKind.FLOW_ADDED),
        (3, ChangeKind.FLOW_ADDED),
    ]
    pending = asyncio.ensure_future(take(batches, 2))
    await asyncio.sleep(0)
    assert not pending.done()  # caught up: waits for live changes
    await register(registry, "b")
    live = await pending
    assert [(c.revision, c.node_id, c.kind) for c in live] == [
        (4, "b", ChangeKind.NODE_ONLINE),
        (5, "b", ChangeKind.FLOW_ADDED),
    ]


async def test_a_client_resumes_after_the_last_revision_it_saw(
    registry: Registry, clock: ManualClock
) -> None:
    await register(registry, "a")
    first = aiter(await registry.open_watch(0))
    seen = await take(first, 2)
    await first.aclose()  # the client disconnects
    await register(registry, "b")
    clock.advance(31)
    await registry.sweep()  # both go OFFLINE while the client is away
    resumed = aiter(await registry.open_watch(seen[-1].revision))
    rest = await take(resumed, 4)
    assert [c.revision for c in seen + rest] == [1, 2, 3, 4, 5, 6]
    assert [c.kind for c in rest[-2:]] == [ChangeKind.NODE_OFFLINE, ChangeKind.NODE_OFFLINE]


async def test_node_changes_carry_the_node_and_flow_changes_the_flow(
    registry: Registry,
) -> None:
    await register(registry, "a", "x")
    node_change, flow_change = await take(aiter(await registry.open_watch(0)), 2)
    assert node_change.node is not None and node_change.node.node_id == "a"
    assert node_change.node.flows == ()  # flows travel in their own changes
    assert flow_change.flow is not None and flow_change.flow.name == "x"
    assert flow_change.node is None


async def test_watching_from_beyond_the_log_is_refused(registry: Registry) -> None:
    await register(registry, "a")
    with pytest.raises(RevisionInFuture):
        await registry.open_watch(3)
    with pytest.raises(InvalidArgument):
        await registry.open_watch(-1)
    await registry.open_watch(2)  # the current revision is fine: only live changes follow


async def test_a_watch_behind_the_retained_log_must_list_again(
    registry: Registry, clock: ManualClock
) -> None:
    for name in "abcdefg":
        await register(registry, name)  # 14 changes, 10 retained
    await registry.sweep()
    assert await registry.store.compacted_revision() == 4
    with pytest.raises(RevisionCompacted) as caught:
        await registry.open_watch(3)
    assert caught.value.metadata == {"compacted_revision": "4"}
    replay = await take(aiter(await registry.open_watch(0)), 10)  # 0: all that is kept
    assert replay[0].revision == 5


async def test_shutdown_ends_watches(registry: Registry) -> None:
    batches = aiter(await registry.open_watch(0))
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)
    registry.stop_watches()
    with pytest.raises(RegistryClosing):
        await asyncio.wait_for(waiting, 10)
