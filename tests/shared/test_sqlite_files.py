"""Every SQLite database of every daemon is private (issue 11, item 5): the database and its
-wal/-shm files 0600, a directory created for them 0700, whatever the umask; files an earlier
version left world-readable are narrowed on open. One opener (`kodosumi/sqlite.py`) serves all."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from kodosumi import sqlite
from kodosumid.event_store import SqliteEventStore
from kodosumid.observability.alert_log import AlertLog
from registryd.auth.sqlite_store import SqliteAuthStore
from registryd.sqlite_store import SqliteStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most careless umask an operator could run a daemon with."""
    old = os.umask(0)
    yield
    os.umask(old)


def database_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if ".sqlite" in p.name)


async def _event_store(path: Path) -> Callable[[], Awaitable[None]]:
    store = SqliteEventStore(path)
    await store.open()
    return store.close


async def _alert_log(path: Path) -> Callable[[], Awaitable[None]]:
    log = AlertLog(path)
    await log.open()
    return log.close


async def _registry(path: Path) -> Callable[[], Awaitable[None]]:
    return (await SqliteStore.open(path)).close


async def _auth(path: Path) -> Callable[[], Awaitable[None]]:
    return (await SqliteAuthStore.open(path)).close


@pytest.mark.parametrize("opener", [_event_store, _alert_log, _registry, _auth])
async def test_every_store_keeps_its_files_private(
    opener: Callable[[Path], Awaitable[Callable[[], Awaitable[None]]]],
    tmp_path: Path,
    loose_umask: None,
) -> None:
    folder = tmp_path / "state" / "sub"
    close = await opener(folder / "db.sqlite")
    try:
        files = database_files(folder)
        assert {p.name for p in files} >= {"db.sqlite", "db.sqlite-wal", "db.sqlite-shm"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(folder) == 0o700
    finally:
        await close()


async def test_files_left_readable_by_an_earlier_version_are_narrowed(tmp_path: Path) -> None:
    db = await sqlite.connect(tmp_path / "old.sqlite")
    await db.execute("CREATE TABLE t (x)")
    await db.close()
    for path in database_files(tmp_path):
        path.chmod(0o644)
    (tmp_path / "old.sqlite-wal").touch(mode=0o666)
    (tmp_path / "old.sqlite-wal").chmod(0o666)
    db = await sqlite.connect(tmp_path / "old.sqlite")
    try:
        assert {mode(p) for p in database_files(tmp_path)} == {0o600}
    finally:
        await db.close()


def test_a_state_directory_is_0700_new_or_existing(tmp_path: Path, loose_umask: None) -> None:
    fresh = sqlite.private_dir(tmp_path / "a" / "state")
    assert mode(fresh) == 0o700
    existing = tmp_path / "b"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    assert mode(sqlite.private_dir(existing)) == 0o700


async def test_the_reader_sees_committed_data_only_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = await sqlite.connect(path)
    reader = await sqlite.connect_reader(path)
    try:
        await writer.execute("CREATE TABLE t (x)")
        await writer.execute("BEGIN")
        await writer.execute("INSERT INTO t VALUES (1)")
        assert await reader.execute_fetchall("SELECT count(*) FROM t") == [(0,)]
        await writer.execute("COMMIT")
        assert await reader.execute_fetchall("SELECT count(*) FROM t") == [(1,)]
        with pytest.raises(Exception, match="readonly"):
            await reader.execute("INSERT INTO t VALUES (2)")
    finally:
        await reader.close()
        await writer.close()


async def test_the_pragmas_every_store_relies_on(tmp_path: Path) -> None:
    db = await sqlite.connect(tmp_path / "db.sqlite", synchronous="FULL", foreign_keys=True)
    try:
        assert await db.execute_fetchall("PRAGMA journal_mode") == [("wal",)]
        assert await db.execute_fetchall("PRAGMA synchronous") == [(2,)]
        assert await db.execute_fetchall("PRAGMA foreign_keys") == [(1,)]
        assert await db.execute_fetchall("PRAGMA busy_timeout") == [(sqlite.BUSY_TIMEOUT_MS,)]
    finally:
        await db.close()
    with pytest.raises(ValueError, match="synchronous"):
        await sqlite.connect(tmp_path / "x.sqlite", synchronous="NORMAL; DROP TABLE t")
    assert not (tmp_path / "x.sqlite").exists()


async def test_in_memory_stays_in_memory(tmp_path: Path) -> None:
    db = await sqlite.connect(None)
    try:
        await db.execute("CREATE TABLE t (x)")
    finally:
        await db.close()
