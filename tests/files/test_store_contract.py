"""One contract for every FileStore: the same tests against the in-memory and the SQLite store
(an abstract class with `store_factory`, one tiny subclass per store)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kodosumid.files import FileLink, FileRecord, FileStore, MemoryFileStore, SqliteFileStore
from kodosumid.files.model import INPUT, OUTPUT, file_id_for

SHA_A = "a" * 64
SHA_B = "b" * 64


def record(owner: str = "spiffe://t/user/ann", sha: str = SHA_A, **changes: object) -> FileRecord:
    values: dict[str, object] = {
        "file_id": file_id_for(owner, sha),
        "owner": owner,
        "name": "report.pdf",
        "media_type": "application/pdf",
        "size": 10,
        "sha256": sha,
        "create_ns": 1_000,
        "expire_ns": 5_000,
    }
    values.update(changes)
    return FileRecord(**values)  # type: ignore[arg-type]


class StoreContract:
    async def store_factory(self, tmp_path: Path) -> FileStore:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FileStore]:
        store = await self.store_factory(tmp_path)
        await store.open()
        yield store
        await store.close()

    async def test_put_get_delete(self, store: FileStore) -> None:
        r = record()
        assert await store.get(r.file_id) is None
        assert await store.put(r) == r
        assert await store.get(r.file_id) == r
        assert await store.delete(r.file_id) == r
        assert await store.get(r.file_id) is None
        assert await store.delete(r.file_id) is None

    async def test_a_second_put_keeps_the_file_and_the_later_expiry(self, store: FileStore) -> None:
        r = record()
        await store.put(r)
        again = await store.put(record(name="other.pdf", expire_ns=9_000, create_ns=2_000))
        assert again.name == "report.pdf" and again.create_ns == 1_000
        assert again.expire_ns == 9_000
        assert (await store.put(record(expire_ns=10))).expire_ns == 9_000

    async def test_ids_differ_per_owner_for_the_same_content(self, store: FileStore) -> None:
        ann, bob = record(), record(owner="spiffe://t/user/bob")
        assert ann.file_id != bob.file_id
        await store.put(ann)
        await store.put(bob)
        assert await store.stored_bytes(ann.owner) == 10
        assert await store.stored_bytes(bob.owner) == 10
        assert await store.stored_bytes("spiffe://t/user/nobody") == 0

    async def test_links_by_execution_and_side(self, store: FileStore) -> None:
        a, b = record(), record(sha=SHA_B, name="out.csv")
        await store.put(a)
        await store.put(b)
        await store.link(FileLink(b.file_id, "e1", OUTPUT, "out.csv"))
        await store.link(FileLink(a.file_id, "e1", INPUT, "report"))
        await store.link(FileLink(a.file_id, "e1", INPUT, "report"))  # idempotent
        both = await store.files_of("e1")
        assert [(link.name, link.direction) for link, _ in both] == [
            ("report", INPUT),
            ("out.csv", OUTPUT),
        ]
        assert [r for _, r in both] == [a, b]
        assert [link.name for link, _ in await store.files_of("e1", OUTPUT)] == ["out.csv"]
        assert await store.files_of("e2") == []
        assert await store.links_of(a.file_id) == [FileLink(a.file_id, "e1", INPUT, "report")]

    async def test_a_link_to_an_unknown_file_is_ignored(self, store: FileStore) -> None:
        await store.link(FileLink("nope", "e1", INPUT, "x"))
        assert await store.files_of("e1") == []

    async def test_unlinking_executions_names_files_left_unused(self, store: FileStore) -> None:
        a, b = record(), record(sha=SHA_B)
        await store.put(a)
        await store.put(b)
        await store.link(FileLink(a.file_id, "e1", INPUT, "x"))
        await store.link(FileLink(a.file_id, "e2", INPUT, "x"))
        await store.link(FileLink(b.file_id, "e1", OUTPUT, "y"))
        assert await store.unlink_executions(["e1"]) == [b.file_id]
        assert await store.unlink_executions(["e2", "e9"]) == [a.file_id]
        assert await store.unlink_executions([]) == []

    async def test_expired_skips_files_in_use(self, store: FileStore) -> None:
        a, b = record(expire_ns=100), record(sha=SHA_B, expire_ns=200)
        await store.put(a)
        await store.put(b)
        assert await store.expired(50) == []
        assert await store.expired(150) == [a.file_id]
        await store.link(FileLink(a.file_id, "e1", INPUT, "x"))
        assert await store.expired(250) == [b.file_id]
        assert await store.expired(250, limit=0) == []

    async def test_blob_in_use_while_any_owner_holds_it(self, store: FileStore) -> None:
        ann, bob = record(), record(owner="spiffe://t/user/bob")
        await store.put(ann)
        await store.put(bob)
        await store.delete(ann.file_id)
        assert await store.sha_in_use(SHA_A)
        await store.delete(bob.file_id)
        assert not await store.sha_in_use(SHA_A)

    async def test_grants(self, store: FileStore) -> None:
        a = record()
        await store.grant(a.file_id, "spiffe://t/node/b")  # unknown file: ignored
        await store.put(a)
        assert not await store.granted(a.file_id, "spiffe://t/node/b")
        await store.grant(a.file_id, "spiffe://t/node/b")
        await store.grant(a.file_id, "spiffe://t/node/b")
        assert await store.granted(a.file_id, "spiffe://t/node/b")
        assert not await store.granted(a.file_id, "spiffe://t/node/c")
        await store.delete(a.file_id)
        await store.put(a)
        assert not await store.granted(a.file_id, "spiffe://t/node/b")

    async def test_delete_drops_links(self, store: FileStore) -> None:
        a = record()
        await store.put(a)
        await store.link(FileLink(a.file_id, "e1", INPUT, "x"))
        await store.delete(a.file_id)
        assert await store.files_of("e1") == []
        assert await store.links_of(a.file_id) == []


class TestMemoryStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> FileStore:
        return MemoryFileStore()


class TestSqliteStore(StoreContract):
    async def store_factory(self, tmp_path: Path) -> FileStore:
        return SqliteFileStore(tmp_path / "files.sqlite")


async def test_sqlite_store_survives_a_reopen_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "files.sqlite"
    store = SqliteFileStore(path)
    await store.open()
    a = record()
    await store.put(a)
    await store.link(FileLink(a.file_id, "e1", INPUT, "x"))
    await store.close()
    again = SqliteFileStore(path)
    await again.open()
    assert await again.get(a.file_id) == a
    assert len(await again.files_of("e1")) == 1
    await again.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
