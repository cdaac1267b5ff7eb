"""One contract for both auth stores (memory and SQLite): what each must do alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registryd.auth.memory_store import MemoryAuthStore
from registryd.auth.model import (
    BadgeRecord,
    CertificateRecord,
    Group,
    HostNames,
    IdentityRevocation,
    SerialRevocation,
    TokenRecord,
    User,
)
from registryd.auth.sqlite_store import SqliteAuthStore
from registryd.auth.store import AuthStore

BIG_SERIAL = (1 << 158) + 12345  # serials are up to 159 bits: more than SQLite's integers


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthStore]:
    if request.param == "memory":
        yield MemoryAuthStore()
        return
    sqlite = await SqliteAuthStore.open(tmp_path / "registry.sqlite")
    yield sqlite
    await sqlite.close()


async def test_users_and_their_groups(store: AuthStore) -> None:
    await store.put_user(User("bob", frozenset({"user"}), frozenset({"ops"}), 1.0))
    await store.put_user(User("alice", frozenset({"user", "admin"}), frozenset(), 2.0))
    assert [u.name for u in await store.list_users()] == ["alice", "bob"]
    assert await store.get_user("bob") == User("bob", frozenset({"user"}), frozenset({"ops"}), 1.0)
    assert await store.get_user("nobody") is None
    # Replacing a user replaces its memberships and roles; groups named are created.
    await store.put_user(User("bob", frozenset({"user", "operator"}), frozenset({"ml"}), 1.0))
    assert await store.list_groups() == [Group("ml", "", ("bob",)), Group("ops", "", ())]
    await store.put_group(Group("ops", "on call"))
    await store.put_user(User("alice", frozenset({"user"}), frozenset({"ops"}), 2.0))
    assert await store.list_groups() == [
        Group("ml", "", ("bob",)),
        Group("ops", "on call", ("alice",)),
    ]


async def test_deleting_a_group_drops_its_memberships(store: AuthStore) -> None:
    await store.put_user(User("bob", frozenset({"user"}), frozenset({"ops", "ml"}), 1.0))
    assert await store.delete_group("ops")
    assert not await store.delete_group("ops")
    bob = await store.get_user("bob")
    assert bob is not None and bob.groups == {"ml"}
    assert await store.delete_user("bob")
    assert not await store.delete_user("bob")
    assert await store.list_groups() == [Group("ml", "", ())]


async def test_a_token_is_used_once_and_never_after_it_expired(store: AuthStore) -> None:
    await store.add_token(TokenRecord("h1", "spiffe://d/user/a", 10.0, 20.0, "root"))
    await store.add_token(TokenRecord("h2", "spiffe://d/user/b", 10.0, 20.0, "root"))
    used = await store.use_token("h1", 15.0)
    assert used is not None and used.identity == "spiffe://d/user/a" and used.used_at == 15.0
    assert await store.use_token("h1", 16.0) is None
    assert await store.use_token("h2", 20.0) is None  # expired
    assert await store.use_token("nope", 11.0) is None


async def test_a_token_can_be_looked_at_without_using_it_and_keeps_its_names(
    store: AuthStore,
) -> None:
    names = HostNames(("n.lan",), ("10.0.0.5",))
    await store.add_token(TokenRecord("h3", "spiffe://d/node/n", 10.0, 20.0, "root", None, names))
    peeked = await store.peek_token("h3", 11.0)
    assert peeked is not None and peeked.names == names and peeked.used_at is None
    assert await store.peek_token("h3", 21.0) is None  # expired
    used = await store.use_token("h3", 12.0)
    assert used is not None and used.names == names
    assert await store.peek_token("h3", 13.0) is None  # used


async def test_approved_host_names_are_replaced(store: AuthStore) -> None:
    assert await store.approved_names("spiffe://d/node/n") == HostNames()
    await store.approve_names("spiffe://d/node/n", HostNames(("a.lan",), ()), 1.0, "root")
    await store.approve_names("spiffe://d/node/n", HostNames((), ("10.0.0.9",)), 2.0, "root")
    assert await store.approved_names("spiffe://d/node/n") == HostNames((), ("10.0.0.9",))


async def test_certificates_and_revocations(store: AuthStore) -> None:
    a = CertificateRecord(BIG_SERIAL, "spiffe://d/user/a", 100.0, 200.0, 100.0)
    b = CertificateRecord(7, "spiffe://d/user/b", 100.0, 150.0, 101.0)
    await store.add_certificate(a)
    await store.add_certificate(b)
    assert await store.get_certificate(BIG_SERIAL) == a
    assert await store.list_certificates() == [a, b]
    assert await store.list_certificates("spiffe://d/user/b") == [b]
    assert await store.list_certificates(valid_at=160.0) == [a]

    await store.revoke_serial(SerialRevocation(BIG_SERIAL, a.identity, 200.0, 120.0, "lost"))
    await store.revoke_serial(SerialRevocation(7, b.identity, 150.0, 120.0))
    await store.revoke_serial(SerialRevocation(7, b.identity, 150.0, 130.0, "again"))
    await store.revoke_identity(IdentityRevocation("spiffe://d/user/c", 125.0, "gone"))
    await store.revoke_identity(IdentityRevocation("spiffe://d/user/c", 140.0, "again"))
    revoked = await store.revocations(now=140.0)
    assert [r.serial for r in revoked.serials] == [7, BIG_SERIAL]
    assert revoked.serials[0].revoked_at == 120.0  # the first revocation stands
    assert [(r.identity, r.revoked_at) for r in revoked.identities] == [
        ("spiffe://d/user/c", 140.0)
    ]
    # Expired certificates leave the list.
    later = await store.revocations(now=160.0)
    assert [r.serial for r in later.serials] == [BIG_SERIAL]


async def test_badges(store: AuthStore) -> None:
    flow = BadgeRecord("1", "certified-flow", "spiffe://d/flow/n/f", "t1", 1.0, 100.0, {"v": 1})
    node = BadgeRecord("2", "service-level", "spiffe://d/node/n", "t2", 2.0, 50.0, {})
    await store.add_badge(flow)
    await store.add_badge(node)
    assert await store.list_badges() == [flow, node]
    assert await store.list_badges("spiffe://d/flow/") == [flow]
    assert await store.list_badges(valid_at=60.0) == [flow]
    await store.revoke_badge("2", 40.0, "below gold")
    await store.revoke_badge("2", 45.0, "again")  # the first revocation stands
    await store.revoke_badge("unknown", 45.0, "nothing")
    (revoked,) = [b for b in await store.list_badges() if b.badge_id == "2"]
    assert (revoked.revoked_at, revoked.revoke_reason) == (40.0, "below gold")
    assert await store.list_badges(revoked=False) == [flow]
    level = BadgeRecord("3", "service-level", "spiffe://d/flow/n/f", "t3", 3.0, 90.0, {}, "gold")
    await store.add_badge(level)
    assert (await store.list_badges("spiffe://d/flow/n/f", revoked=False))[-1] == level
