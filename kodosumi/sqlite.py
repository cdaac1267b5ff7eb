"""The one way a daemon opens a SQLite database: WAL, pragmas, busy timeout, private files.

Every store of the node and the registry (the event store, the alert log, the registry store,
the auth store) opens its database here, so they agree on journaling and locking and none can
leave a world-readable file behind: a database holds users' inputs and results, identities and
tokens. The database, its `-wal` and `-shm` files are mode 0600 (SQLite creates the latter two
with the database's mode; files left broader by earlier versions are narrowed on open) and a
directory created for them is 0700.

`connect` gives the writer (WAL, `synchronous`, foreign keys on request); `connect_reader`
gives a second, read-only connection to the same file: in WAL mode it sees committed
transactions only and never waits for the writer (the watch path reads through it).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import aiosqlite

FILE_MODE = 0o600
DIR_MODE = 0o700
# A writer waits this long for another connection's transaction before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
MEMORY = ":memory:"


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; an existing directory is narrowed to 0700.

    For a daemon's own state directory: it holds keys and databases of its users."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) & ~DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def _private_files(path: Path) -> None:
    """Create the database file as 0600 before SQLite does (it would use the umask), and
    narrow it and its companions if an earlier version left them broader."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        companion = path.with_name(name)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(companion.stat().st_mode) != FILE_MODE:
                companion.chmod(FILE_MODE)


async def connect(
    path: Path | None, *, synchronous: str = "NORMAL", foreign_keys: bool = False
) -> aiosqlite.Connection:
    """The writer connection (autocommit: callers say BEGIN/COMMIT). `None`: in memory."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
    if path is not None:
        _private_files(path)
    db = await aiosqlite.connect(MEMORY if path is None else path, isolation_level=None)
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={synchronous}")
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if foreign_keys:
            await db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        await db.close()
        raise
    if path is not None:
        _private_files(path)  # the -wal and -shm files exist now
    return db


async def connect_reader(path: Path) -> aiosqlite.Connection:
    """A read-only second connection to a database `connect` opened (committed data only)."""
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA query_only=ON")
    except BaseException:
        await db.close()
        raise
    return db
