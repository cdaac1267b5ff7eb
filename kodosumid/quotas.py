"""Quotas per identity: what one caller may hold of a node at once, and how fast it may ask.

Seven limits, each per identity (the caller's SPIFFE id): executions running at once,
launches per minute, open watch streams, bytes stored for the identity's executions, the
size of a launch's inputs (`max_input_bytes`, which a flow may set for itself in the
catalog), and for the file store (docs/files.md) the bytes of the identity's files
(`file_bytes`, uploads in progress included) and the largest file it may store
(`max_file_bytes`). `[quotas]` of the node's TOML file sets the defaults;
`[quotas.roles.<role>]` and `[quotas.groups.<group>]` raise or lower them for the identities
holding that role or group (the most generous of the matching entries wins, per limit).
0 means no limit.

Admission is synchronous: a check and the reservation it grants happen without an `await`
between them, so parallel launches cannot all pass a check before any of them counts (no
overshoot on the event loop). A refusal raises `QuotaExceeded` (RESOURCE_EXHAUSTED with a
`QUOTA_…` reason and a `QuotaFailure` detail naming the quota and its limit).

Domain code: no gRPC; time is injected.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kodosumi.authz import ADMIN, FLOW, NODE, Principal
from kodosumi.errors import InvalidArgument, QuotaExceeded
from kodosumid.event_store import TERMINAL, ExecutionRecord, StatusChange

MIB = 1024 * 1024
GIB = 1024 * MIB
# Bytes stored per identity are read from the store at most this often (it is a sum).
STORED_BYTES_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    """One set of limits (0: unlimited)."""

    concurrent_executions: int = 20
    launches_per_minute: int = 120
    open_streams: int = 64
    stored_bytes: int = 1024 * MIB
    # Well below the 4 MiB a gRPC message may carry, so that a launch, its inputs event and
    # every response that carries them stay far from the transport's limit.
    max_input_bytes: int = 256 * 1024
    # Bytes of files the identity holds in the node's file store (an output counts for its
    # execution's owner; a file a peer pulled for a forwarded launch for the launching user).
    file_bytes: int = 10 * GIB
    # The largest file the identity may store (0: the node's `[files] max_file_bytes` only).
    max_file_bytes: int = 0

    def most_generous(self, other: Limits, keys: Iterable[str]) -> Limits:
        changes: dict[str, int] = {}
        for key in keys:
            mine, theirs = getattr(self, key), getattr(other, key)
            changes[key] = 0 if 0 in (mine, theirs) else max(mine, theirs)
        return replace(self, **changes)


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True, slots=True)
class Override:
    """A `[quotas.roles.X]` or `[quotas.groups.X]` table: the limits it names."""

    values: Mapping[str, int]


def _builtin_roles() -> dict[str, Override]:
    # Admins run the node; machines (peers forwarding for their users, flows calling flows)
    # act for many people at once. Configuration may narrow any of these.
    unlimited = {k: 0 for k in LIMIT_NAMES if k != "max_input_bytes"}
    machines = {
        "concurrent_executions": 1000,
        "launches_per_minute": 6000,
        "open_streams": 1000,
        "stored_bytes": 0,
        # A forwarding node names the user it launches for; files are charged to that user.
        "file_bytes": 0,
        "max_file_bytes": 0,
    }
    return {ADMIN: Override(unlimited), NODE: Override(machines), FLOW: Override(machines)}


@dataclass(frozen=True, slots=True)
class QuotasConfig:
    defaults: Limits = field(default_factory=Limits)
    roles: Mapping[str, Override] = field(default_factory=_builtin_roles)
    groups: Mapping[str, Override] = field(default_factory=dict)

    def limits_for(self, principal: Principal) -> Limits:
        limits, matched = self.defaults, False
        entries = [self.roles[r] for r in sorted(principal.roles) if r in self.roles]
        entries += [self.groups[g] for g in sorted(principal.groups) if g in self.groups]
        for entry in entries:
            candidate = replace(self.defaults, **entry.values)
            if not matched:
                limits, matched = candidate, True
            else:
                limits = limits.most_generous(candidate, entry.values)
        return limits


def _override(raw: Any, where: str) -> Override:
    if not isinstance(raw, dict):
        raise InvalidArgument.field(where, "a table of limits")
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key not in LIMIT_NAMES:
            raise InvalidArgument.field(f"{where}.{key}", f"not a quota ({', '.join(LIMIT_NAMES)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument.field(f"{where}.{key}", "a whole number >= 0 (0: no limit)")
        values[key] = value
    return Override(values)


def quotas_config(raw: Mapping[str, Any]) -> QuotasConfig:
    """`[quotas]` of the node's TOML file; errors name the bad key (`quotas.roles.user.x`)."""
    top = {k: v for k, v in raw.items() if k not in ("roles", "groups")}
    defaults = replace(Limits(), **_override(top, "quotas").values)
    roles = _builtin_roles()
    for section in ("roles", "groups"):
        if not isinstance(raw.get(section, {}), dict):
            raise InvalidArgument.field(f"quotas.{section}", "a table of tables")
    for name, entry in raw.get("roles", {}).items():
        roles[name] = _override(entry, f"quotas.roles.{name}")
    groups = {
        name: _override(entry, f"quotas.groups.{name}")
        for name, entry in raw.get("groups", {}).items()
    }
    return QuotasConfig(defaults, roles, groups)


def _refuse(principal: Principal, quota: str, limit: int, detail: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"quota {quota} of {principal.id} is used up: limit {limit}{detail}",
        quota=quota,
        limit=limit,
        subject=principal.id,
    )


class LaunchTicket:
    """A launch admitted against the concurrency quota: `commit` it with the execution id
    the launch got (the slot then lasts until the execution ends), or `release` it."""

    def __init__(self, quotas: Quotas, identity: str) -> None:
        self._quotas = quotas
        self._identity = identity
        self._open = True

    def commit(self, execution_id: str) -> None:
        if self._open:
            self._open = False
            self._quotas._commit(self._identity, execution_id)

    def release(self) -> None:
        if self._open:
            self._open = False
            self._quotas._release_pending(self._identity)


class StreamTicket:
    """One open watch stream of an identity; `close` gives the slot back (idempotent)."""

    def __init__(self, quotas: Quotas, identity: str) -> None:
        self._quotas = quotas
        self._identity = identity
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._quotas._close_stream(self._identity)

    def __enter__(self) -> StreamTicket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


StoredBytes = Callable[[str], Awaitable[int]]


async def _nothing_stored(owner: str) -> int:
    return 0


class FileTicket:
    """Bytes of an identity's file quota held while a file is stored; `release` them once
    it is stored (then the store counts it) or failed (idempotent)."""

    def __init__(self, quotas: Quotas, identity: str, size: int) -> None:
        self._quotas = quotas
        self._identity = identity
        self._size = size

    def release(self) -> None:
        if self._size:
            self._quotas._release_file_bytes(self._identity, self._size)
            self._size = 0


class Quotas:
    """The node's quota book. Also an `ExecutionObserver`: a terminal status frees the
    execution's concurrency slot."""

    def __init__(
        self,
        config: QuotasConfig,
        *,
        stored_bytes: StoredBytes = _nothing_stored,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self._stored_bytes = stored_bytes
        self._running: dict[str, set[str]] = {}  # identity -> execution ids
        self._owner_of: dict[str, str] = {}  # execution id -> identity charged
        self._pending: dict[str, int] = {}  # identity -> launches admitted, not yet stored
        self._launches: dict[str, deque[float]] = {}
        self._streams: dict[str, int] = {}
        self._stored_cache: dict[str, tuple[float, int]] = {}
        self._file_bytes: dict[str, int] = {}  # identity -> bytes of files being stored

    def limits_for(self, principal: Principal) -> Limits:
        return self.config.limits_for(principal)

    # -- launches -----------------------------------------------------------------------------

    def check_inputs(self, principal: Principal, size: int, flow_limit: int = 0) -> None:
        """A flow's own `max_input_bytes` (catalog) wins over the identity's."""
        limit = flow_limit or self.limits_for(principal).max_input_bytes
        if limit and size > limit:
            raise _refuse(principal, "max_input_bytes", limit, f" (inputs of {size} bytes)")

    async def check_stored(self, principal: Principal) -> None:
        limit = self.limits_for(principal).stored_bytes
        if not limit:
            return
        now = self.clock()
        cached = self._stored_cache.get(principal.id)
        if cached is None or now - cached[0] > STORED_BYTES_CACHE_SECONDS:
            cached = (now, await self._stored_bytes(principal.id))
            self._stored_cache[principal.id] = cached
        if cached[1] >= limit:
            raise _refuse(principal, "stored_bytes", limit, f" ({cached[1]} bytes stored)")

    def admit_launch(self, principal: Principal) -> LaunchTicket:
        """Count the launch against the rate and reserve a concurrency slot, or refuse."""
        limits, identity, now = self.limits_for(principal), principal.id, self.clock()
        window = self._launches.setdefault(identity, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if limits.launches_per_minute and len(window) >= limits.launches_per_minute:
            raise _refuse(principal, "launches_per_minute", limits.launches_per_minute, "")
        running = len(self._running.get(identity, ())) + self._pending.get(identity, 0)
        if limits.concurrent_executions and running >= limits.concurrent_executions:
            raise _refuse(
                principal, "concurrent_executions", limits.concurrent_executions, " (running)"
            )
        window.append(now)
        self._pending[identity] = self._pending.get(identity, 0) + 1
        return LaunchTicket(self, identity)

    def _release_pending(self, identity: str) -> None:
        left = self._pending.get(identity, 0) - 1
        if left > 0:
            self._pending[identity] = left
        else:
            self._pending.pop(identity, None)

    def _commit(self, identity: str, execution_id: str) -> None:
        self._release_pending(identity)
        self._running.setdefault(identity, set()).add(execution_id)
        self._owner_of[execution_id] = identity

    def running(self, identity: str) -> int:
        return len(self._running.get(identity, ()))

    def seed(self, records: Sequence[ExecutionRecord]) -> None:
        """Executions still open at start-up count against their owners again."""
        for record in records:
            self._commit_unpended(record.owner, record.execution_id)

    def _commit_unpended(self, identity: str, execution_id: str) -> None:
        self._running.setdefault(identity, set()).add(execution_id)
        self._owner_of[execution_id] = identity

    def ended(self, execution_id: str) -> None:
        identity = self._owner_of.pop(execution_id, None)
        if identity is None:
            return
        running = self._running.get(identity)
        if running is not None:
            running.discard(execution_id)
            if not running:
                del self._running[identity]

    # ExecutionObserver
    def launched(self, record: ExecutionRecord) -> None:
        pass

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        if any(change.status in TERMINAL for change in changes):
            self.ended(record.execution_id)
            # What it stored is final now: count it at the owner's next launch.
            self._stored_cache.pop(record.owner, None)

    # -- streams ------------------------------------------------------------------------------

    def open_stream(self, principal: Principal) -> StreamTicket:
        limit, identity = self.limits_for(principal).open_streams, principal.id
        open_now = self._streams.get(identity, 0)
        if limit and open_now >= limit:
            raise _refuse(principal, "open_streams", limit, " (streams open)")
        self._streams[identity] = open_now + 1
        return StreamTicket(self, identity)

    def _close_stream(self, identity: str) -> None:
        left = self._streams.get(identity, 0) - 1
        if left > 0:
            self._streams[identity] = left
        else:
            self._streams.pop(identity, None)

    def streams(self, identity: str) -> int:
        return self._streams.get(identity, 0)

    # -- files --------------------------------------------------------------------------------

    async def admit_file(
        self, owner: Principal, size: int, stored: StoredBytes, field: str = "header.size"
    ) -> FileTicket:
        """Hold `size` bytes of `owner`'s file quota while a file is stored, or refuse:
        `max_file_bytes` (`field` names the size asked) and `file_bytes` (what the file
        store holds for the owner, plus what is being stored: parallel uploads cannot
        overshoot, no await between the check and the hold)."""
        limits, identity = self.limits_for(owner), owner.id
        if limits.max_file_bytes and size > limits.max_file_bytes:
            detail = f" ({field}: a file of {size} bytes)"
            raise _refuse(owner, "max_file_bytes", limits.max_file_bytes, detail)
        if limits.file_bytes:
            held = await stored(identity) + self._file_bytes.get(identity, 0)
            if held + size > limits.file_bytes:
                detail = f" ({held} bytes of files held, {size} more asked)"
                raise _refuse(owner, "file_bytes", limits.file_bytes, detail)
        self._file_bytes[identity] = self._file_bytes.get(identity, 0) + size
        return FileTicket(self, identity, size)

    def _release_file_bytes(self, identity: str, size: int) -> None:
        left = self._file_bytes.get(identity, 0) - size
        if left > 0:
            self._file_bytes[identity] = left
        else:
            self._file_bytes.pop(identity, None)


async def launch_within(
    quotas: Quotas,
    principal: Principal,
    *,
    inputs_bytes: int,
    flow_limit: int,
    launch: Callable[[], Awaitable[ExecutionRecord]],
) -> ExecutionRecord:
    """Run `launch` inside the caller's quotas: inputs size, stored bytes, rate, concurrency.

    The concurrency slot is reserved before `launch` runs (no await between check and
    reservation) and kept, under the new execution's id, until it ends."""
    quotas.check_inputs(principal, inputs_bytes, flow_limit)
    await quotas.check_stored(principal)
    ticket = quotas.admit_launch(principal)
    try:
        record = await launch()
        ticket.commit(record.execution_id)
        if record.terminal:
            quotas.ended(record.execution_id)
        return record
    finally:
        ticket.release()
