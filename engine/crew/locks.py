"""A lock backend for CrewAI that lets many executions share one process without stalling.

CrewAI guards its local stores (the kickoff task-output SQLite database written by every
Crew it builds and runs, memory, knowledge) with named locks from
`crewai_core.lock_store`: by default a `portalocker` file lock in the temp directory, which
waits by polling every 0.25 s. Two executions of one executor that want the same lock
therefore lose up to a quarter of a second per encounter, and concurrent crews end up
running one after the other (measured: three concurrent 75 ms crews took 0.6 s).

The backend installed here takes a per-name `threading.Lock` first, so the threads of one
process queue without polling, and only then CrewAI's own lock (the same file, or Redis
when `REDIS_URL` is set), which still keeps other processes out. The file naming follows
crewai_core 1.15.30 so that kodosumi and plain CrewAI processes exclude each other.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import md5

import portalocker
from crewai_core import lock_store

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def _cross_process(name: str, timeout: float) -> Iterator[None]:
    """CrewAI's built-in lock (crewai_core.lock_store.lock without a custom backend)."""
    channel = f"crewai:{md5(name.encode(), usedforsecurity=False).hexdigest()}"
    if lock_store._redis_available():
        with portalocker.RedisLock(
            channel=channel, connection=lock_store._redis_connection(), timeout=timeout
        ):
            yield
        return
    path = os.path.join(tempfile.gettempdir(), f"{channel}.lock")
    file_lock = portalocker.Lock(path, timeout=timeout)
    try:
        file_lock.acquire()
    except portalocker.exceptions.BaseLockException as exc:
        raise portalocker.exceptions.LockException(
            f"Failed to acquire lock {name!r} at {path} (timeout={timeout}s)"
        ) from exc
    try:
        yield
    finally:
        file_lock.release()  # type: ignore[no-untyped-call]


@contextmanager
def process_first_lock(name: str, *, timeout: float = 120.0) -> Iterator[None]:
    with _local_guard:
        local = _local_locks.setdefault(name, threading.Lock())
    if not local.acquire(timeout=timeout):
        raise portalocker.exceptions.LockException(
            f"Failed to acquire lock {name!r} within {timeout}s (held in this process)"
        )
    try:
        with _cross_process(name, timeout):
            yield
    finally:
        local.release()


def install() -> None:
    """Use `process_first_lock` for CrewAI's named locks, unless a backend is already set."""
    if lock_store._backend is None:
        lock_store.set_lock_backend(process_first_lock)
