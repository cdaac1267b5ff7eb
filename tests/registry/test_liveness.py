"""Leases with a ManualClock, no sleeping: expiry, OFFLINE kept visible, revival, deregistration,
idempotent re-registration, the restart grace period and the heartbeat interval bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from kodosumi.errors import InvalidArgument
from registryd.clock import ManualClock
from registryd.config import LeaseConfig
from registryd.errors import NodeIdentityMismatch, NodeNotFound, NodeNotRegistered
from registryd.memory_store import MemoryStore
from registryd.model import (
    ChangeDraft,
    ChangeKind,
    Heartbeat,
    NodeLoad,
    NodeQuery,
    NodeRecord,
    NodeState,
)
from registryd.registry import Registry
from tests.registry.helpers import (
    INSECURE,
    announcement,
    flow_principal,
    node_principal,
    user_principal,
)

LEASE = LeaseConfig(
    default_heartbeat_interval=10.0,
    min_heartbeat_interval=1.0,
    max_heartbeat_interval=300.0,
    ttl_factor=3.0,
    restart_grace=60.0,
)
A = node_principal("a")


async def started(store: MemoryStore, clock: ManualClock, **lease: float) -> Registry:
    registry = Registry(store, clock, replace(LEASE, **lease))
    await registry.start()
    return registry


@pytest.fixture
async def registry(clock: ManualClock) -> Registry:
    return await started(MemoryStore(), clock)


async def kinds(registry: Registry, after: int = 0) -> list[ChangeKind]:
    return [c.kind for c in await registry.store.changes_after(after, 1000)]


async def state(registry: Registry, node_id: str = "a") -> NodeState:
    return (await registry.get_node(node_id)).state


async def test_a_lease_lasts_ttl_and_heartbeats_renew_it(
    registry: Registry, clock: ManualClock
) -> None:
    _, grant = await registry.register(A, announcement("a", interval=10))
    assert (grant.ttl, grant.heartbeat_interval) == (30.0, 10.0)
    assert grant.expires_at == clock.now() + 30
    clock.advance(29)
    assert await registry.sweep() == []
    beat = await registry.heartbeat(A, Heartbeat("a"))
    assert beat.expires_at == clock.now() + 30
    clock.advance(29)
    assert await registry.sweep() == []
    assert await state(registry) is NodeState.ONLINE
    clock.advance(1)
    assert await registry.sweep() == ["a"]
    assert await state(registry) is NodeState.OFFLINE


async def test_an_expired_node_is_kept_visible_and_never_deleted(
    registry: Registry, clock: ManualClock
) -> None:
    await registry.register(A, announcement("a", (("hello", ("demo",)), ("search", ()))))
    clock.advance(31)
    await registry.sweep()
    clock.advance(10_000)
    await registry.sweep()
    node = await registry.get_node("a")
    assert node.state is NodeState.OFFLINE
    assert "lease ran out" in node.state_reason
    assert [f.name for f in node.flows] == ["hello", "search"]
    page = await registry.list_nodes(NodeQuery())
    assert [n.node_id for n in page.nodes] == ["a"]
    assert (await kinds(registry))[-1] is ChangeKind.NODE_OFFLINE
    assert (await kinds(registry)).count(ChangeKind.NODE_OFFLINE) == 1


async def test_a_heartbeat_brings_an_offline_node_back(
    registry: Registry, clock: ManualClock
) -> None:
    await registry.register(A, announcement("a"))
    clock.advance(31)
    await registry.sweep()
    before = await registry.store.revision()
    grant = await registry.heartbeat(A, Heartbeat("a", load=NodeLoad(running_executions=3)))
    node = await registry.get_node("a")
    assert node.state is NodeState.ONLINE
    assert node.load.running_executions == 3
    assert grant.expires_at == clock.now() + 30
    assert await kinds(registry, before) == [ChangeKind.NODE_ONLINE]


async def test_heartbeats_of_unknown_or_departed_nodes_ask_for_registration(
    registry: Registry,
) -> None:
    with pytest.raises(NodeNotRegistered):
        await registry.heartbeat(A, Heartbeat("a"))
    await registry.register(A, announcement("a"))
    left = await registry.deregister(A, "a", "maintenance")
    assert (left.state, left.state_reason) == (NodeState.LEFT, "maintenance")
    with pytest.raises(NodeNotRegistered) as caught:
        await registry.heartbeat(A, Heartbeat("a"))
    assert caught.value.reason == "NODE_NOT_REGISTERED"


async def test_deregistering_keeps_the_node_and_is_idempotent(
    registry: Registry, clock: ManualClock
) -> None:
    await registry.register(A, announcement("a"))
    await registry.deregister(A, "a")
    revision = await registry.store.revision()
    again = await registry.deregister(A, "a", "twice")
    assert again.state is NodeState.LEFT and again.state_reason == "deregistered"
    assert await registry.store.revision() == revision
    clock.advance(1000)
    assert await registry.sweep() == []  # a node that left never expires
    assert await state(registry) is NodeState.LEFT
    with pytest.raises(NodeNotFound):
        await registry.deregister(node_principal("b"), "b")


async def test_registering_again_is_idempotent(registry: Registry, clock: ManualClock) -> None:
    first, _ = await registry.register(A, announcement("a"))
    revision = await registry.store.revision()
    clock.advance(5)
    again, grant = await registry.register(A, announcement("a"))
    assert await registry.store.revision() == revision  # no change at all
    assert again.revision == first.revision
    assert again.state_changed_at == first.state_changed_at
    assert again.first_registered_at == first.first_registered_at
    assert grant.expires_at == clock.now() + 30  # but the lease is renewed


async def test_registering_again_reasserts_the_full_state(registry: Registry) -> None:
    await registry.register(A, announcement("a", (("keep", ()), ("drop", ()), ("change", ()))))
    revision = await registry.store.revision()
    changed = announcement("a", (("keep", ()), ("change", ("new-tag",)), ("add", ())))
    node, _ = await registry.register(A, replace(changed, endpoints=("10.0.0.1:7450",)))
    assert [f.name for f in node.flows] == ["keep", "change", "add"]
    assert node.endpoints == ("10.0.0.1:7450",)
    changes = await registry.store.changes_after(revision, 100)
    assert [(c.kind, c.flow.name if c.flow else "") for c in changes] == [
        (ChangeKind.NODE_UPDATED, ""),
        (ChangeKind.FLOW_REMOVED, "drop"),
        (ChangeKind.FLOW_UPDATED, "change"),
        (ChangeKind.FLOW_ADDED, "add"),
    ]
    assert node.revision == changes[-1].revision


async def test_registering_brings_offline_and_departed_nodes_back(
    registry: Registry, clock: ManualClock
) -> None:
    await registry.register(A, announcement("a"))
    clock.advance(31)
    await registry.sweep()
    revision = await registry.store.revision()
    await registry.register(A, announcement("a"))
    assert await kinds(registry, revision) == [ChangeKind.NODE_ONLINE]
    await registry.deregister(A, "a")
    revision = await registry.store.revision()
    node, _ = await registry.register(A, announcement("a"))
    assert node.state is NodeState.ONLINE
    assert node.state_changed_at == clock.now()
    assert await kinds(registry, revision) == [ChangeKind.NODE_ONLINE]


async def test_heartbeats_stay_in_memory_until_a_sweep(
    registry: Registry, clock: ManualClock
) -> None:
    await registry.register(A, announcement("a"))
    clock.advance(5)
    await registry.heartbeat(A, Heartbeat("a", 20.0, NodeLoad(pending_executions=4)))
    stored = await registry.store.get_node("a")
    assert stored is not None and stored.load.pending_executions == 0
    live = await registry.get_node("a")  # reads see the live lease at once
    assert (live.load.pending_executions, live.heartbeat_interval) == (4, 20.0)
    assert live.lease_expires_at == clock.now() + 60
    await registry.sweep()
    stored = await registry.store.get_node("a")
    assert stored is not None
    assert (stored.load.pending_executions, stored.heartbeat_interval) == (4, 20.0)
    assert stored.lease_expires_at == clock.now() + 60
    assert await registry.store.revision() == 2  # heartbeats are no registry changes


async def test_a_restarted_registry_gives_every_online_node_a_grace_period(
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    before = await started(store, clock)
    for name in "abc":
        await before.register(node_principal(name), announcement(name, interval=10))
    await before.deregister(node_principal("c"), "c")
    await before.close()
    # The registry was down far longer than any lease.
    clock.advance(600)
    after = await started(store, clock, restart_grace=60)
    clock.advance(59)
    assert await after.sweep() == []
    assert {n.node_id: n.state for n in (await after.list_nodes(NodeQuery())).nodes} == {
        "a": NodeState.ONLINE,
        "b": NodeState.ONLINE,
        "c": NodeState.LEFT,
    }
    await after.heartbeat(node_principal("a"), Heartbeat("a"))
    clock.advance(2)
    assert await after.sweep() == ["b"]  # only the silent one, and only after the grace


async def test_the_grace_period_never_shortens_a_longer_lease(clock: ManualClock) -> None:
    store = MemoryStore()
    before = await started(store, clock)
    await before.register(A, announcement("a", interval=300))  # ttl 900 s
    await before.close()
    clock.advance(10)
    after = await started(store, clock, restart_grace=60)
    clock.advance(800)
    assert await after.sweep() == []
    clock.advance(100)
    assert await after.sweep() == ["a"]


@pytest.mark.parametrize("interval", [0.0, 0.5, 300.5, -1.0, 86_400.0])
async def test_heartbeat_intervals_out_of_bounds_are_invalid(
    registry: Registry, interval: float
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await registry.register(A, announcement("a", interval=interval))
    assert [v.field for v in caught.value.violations] == ["heartbeat_interval"]
    await registry.register(A, announcement("a", interval=10))
    with pytest.raises(InvalidArgument) as caught:
        await registry.heartbeat(A, Heartbeat("a", interval))
    assert [v.field for v in caught.value.violations] == ["heartbeat_interval"]


async def test_a_missing_interval_takes_the_default_then_the_announced_one(
    registry: Registry,
) -> None:
    _, grant = await registry.register(A, announcement("a", interval=None))
    assert grant.heartbeat_interval == 10.0
    await registry.register(A, announcement("a", interval=4))
    grant = await registry.heartbeat(A, Heartbeat("a"))
    assert (grant.heartbeat_interval, grant.ttl) == (4.0, 12.0)


async def test_a_node_writes_only_its_own_entry(registry: Registry) -> None:
    for intruder in (node_principal("b"), user_principal(), flow_principal("a", "hello")):
        with pytest.raises(NodeIdentityMismatch):
            await registry.register(intruder, announcement("a"))
    await registry.register(A, announcement("a"))
    with pytest.raises(NodeIdentityMismatch):
        await registry.heartbeat(node_principal("b"), Heartbeat("a"))
    with pytest.raises(NodeIdentityMismatch):
        await registry.deregister(node_principal("b"), "a")
    assert await state(registry) is NodeState.ONLINE


async def test_insecure_callers_may_write_any_entry(registry: Registry) -> None:
    node, _ = await registry.register(INSECURE, announcement("anything"))
    assert node.identity == ""
    await registry.heartbeat(INSECURE, Heartbeat("anything"))
    await registry.deregister(INSECURE, "anything")


async def test_the_identity_of_the_writer_is_recorded(registry: Registry) -> None:
    node, _ = await registry.register(A, announcement("a"))
    assert node.identity == "spiffe://test.kodosumi/node/a"


class GatedStore(MemoryStore):
    """Holds every commit until the gate opens, so a test can act while one is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()

    async def commit(self, node: NodeRecord, changes: Sequence[ChangeDraft]) -> Any:
        self.waiting.set()
        await self.gate.wait()
        return await super().commit(node, changes)


async def test_a_heartbeat_racing_the_sweep_revives_the_node(clock: ManualClock) -> None:
    """The sweep takes expired leases out before it awaits; a heartbeat arriving while it
    writes finds no lease, waits for the lock and brings the node back."""
    store = GatedStore()
    registry = await started(store, clock)
    await registry.register(A, announcement("a"))
    clock.advance(31)
    store.gate.clear()
    store.waiting.clear()
    sweep = asyncio.create_task(registry.sweep())
    await store.waiting.wait()  # the sweep is writing NODE_OFFLINE
    beat = asyncio.create_task(registry.heartbeat(A, Heartbeat("a")))
    await asyncio.sleep(0)
    assert not beat.done()  # the heartbeat waits for the sweep
    store.gate.set()
    assert await sweep == ["a"]
    grant = await beat
    assert grant.expires_at == clock.now() + 30
    assert await state(registry) is NodeState.ONLINE
    assert (await kinds(registry))[-2:] == [ChangeKind.NODE_OFFLINE, ChangeKind.NODE_ONLINE]


class FlakyStore(MemoryStore):
    """Fails the next `failures` commits, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def commit(self, node: NodeRecord, changes: Sequence[ChangeDraft]) -> Any:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        return await super().commit(node, changes)


async def test_a_failed_sweep_loses_no_expiry(clock: ManualClock) -> None:
    store = FlakyStore()
    registry = await started(store, clock)
    for name in "ab":
        await registry.register(node_principal(name), announcement(name))
    clock.advance(31)
    store.failures = 1
    with pytest.raises(OSError, match="disk full"):
        await registry.sweep()
    assert {n.state for n in (await registry.list_nodes(NodeQuery())).nodes} == {NodeState.ONLINE}
    assert sorted(await registry.sweep()) == ["a", "b"]
    assert [c.kind for c in await store.changes_after(4, 10)] == [ChangeKind.NODE_OFFLINE] * 2
