"""The node's event store interface. Two implementations hold it: `memory_store.MemoryEventStore`
(domain tests, throwaway nodes) and `sqlite_store.SqliteEventStore` (the daemon). One contract
suite (`tests/event_store/test_store_contract.py`) runs against both.

The store keeps one row per execution and its event stream, keyed by (execution_id, seq).
Events are the serialized `kodosumi.v1.Event` bytes as produced; replay serves what was
emitted. Each write is atomic: a batch's events and the status changes they carry are seen
together or not at all, and an event seen twice (a node that crashed after storing but before
acknowledging) is ignored by key. Reads see committed writes only.

The store is single-writer per execution (the domain guarantees it); it does not check that
`seq` numbers are gapless, it keeps what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from kodosumid.event_store.model import EndedRun, ExecutionRecord, Page, StatusChange
from kodosumid.event_store.usage_model import AttemptUsage, UsagePage, UsageQuery, UsageTotals

# Replay pages: enough events per read to amortize it, few enough bytes that a watcher of a
# stream with large events (a 4 MiB inputs event, big results) holds one page, not the stream.
REPLAY_PAGE_EVENTS = 2000
REPLAY_PAGE_BYTES = 1024 * 1024


class EventStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_execution(
        self, record: ExecutionRecord, events: list[bytes], groups: Sequence[str] = ()
    ) -> None:
        """Insert a new execution and its first events (seq 1..n) atomically; its `last_seq`
        becomes n. An execution id that exists already raises `DuplicateExecution`. `groups`:
        the owner's groups, kept for usage summaries by group (`groups_of`)."""
        ...

    async def append(
        self,
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
        usage: dict[str, list[AttemptUsage]] | None = None,
    ) -> None:
        """Store consecutive events per execution (`first_seq`, data) and their status changes,
        all in one atomic write. Events already stored are kept as they are; `last_seq` only
        grows. A status change sets status and reason; RUNNING sets `start_ns` the first time,
        a terminal status sets `end_ns`. `usage`: attempts' usage stored in the same write
        (`usage_model.py`), with the execution's owner, flow and parent; an attempt stored
        already keeps its first record, and usage of an execution not stored is skipped."""
        ...

    async def set_executor(self, execution_id: str, executor: str) -> None: ...

    async def set_attempt(self, execution_id: str, attempt: int) -> None: ...

    async def delete_executions(self, execution_ids: list[str]) -> None:
        """Remove executions and all their events (unknown ids are skipped)."""
        ...

    async def ended_before(self, end_ns: int, limit: int = 500) -> list[str]:
        """Up to `limit` finished executions that ended before `end_ns`, oldest end first."""
        ...

    async def ended_since(self, since_ns: int, limit: int) -> list[EndedRun]:
        """Up to `limit` finished executions that ended at or after `since_ns`, newest end
        first (service statistics: bounded work however busy the node was)."""
        ...

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    async def read_page(
        self,
        execution_id: str,
        after_seq: int,
        max_events: int = REPLAY_PAGE_EVENTS,
        max_bytes: int = REPLAY_PAGE_BYTES,
    ) -> list[tuple[int, bytes]]:
        """(seq, data) of the stored events after `after_seq`, in order: at most `max_events`,
        and no more than `max_bytes` of data, except that the first event is always returned
        (one larger event still makes progress). Empty when nothing is stored after it."""
        ...

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int = 5000
    ) -> list[tuple[int, bytes]]:
        """`read_page` with up to `limit` events and the default byte bound."""
        ...

    async def stored_bytes(self, owner: str) -> int:
        """Bytes of the events stored for `owner`'s executions (the `stored_bytes` quota)."""
        ...

    async def list_executions(
        self,
        *,
        owner: str | None,
        statuses: Iterable[int] = (),
        flow: str = "",
        page_size: int = 50,
        page_token: str = "",
        max_bytes: int = 0,
    ) -> Page:
        """Executions newest first (create time, then id), keyset-paged: the token names the
        last row of the page and is "" on the last page. `owner` None lists everyone's.
        `max_bytes` (0: unbounded) ends a page early, after at least one execution, before
        the page's records (`model.record_size`) exceed it. A token this store did not issue
        raises `InvalidArgument` naming `page_token`."""
        ...

    async def groups_of(self, execution_id: str) -> tuple[str, ...]:
        """The groups kept for an execution (at launch, or with its usage), sorted."""
        ...

    async def usage_of(self, execution_id: str) -> list[AttemptUsage]:
        """The stored usage of each attempt of an execution, by attempt (empty: none)."""
        ...

    async def children_usage(self, execution_id: str) -> UsageTotals:
        """The usage of an execution's children at any depth (executions whose parent link
        leads to it), summed; `runs` counts the children that have usage."""
        ...

    async def summarize_usage(self, query: UsageQuery) -> UsagePage:
        """Stored attempts matching `query`, summed per key of `query.group_by`, keys in
        ascending order, keyset-paged (a token this store did not issue raises
        `InvalidArgument` naming `page_token`); byte-bounded like `list_executions`."""
        ...

    async def unfinished(self) -> list[ExecutionRecord]:
        """Executions not in a terminal status (to re-attach or to close after a restart)."""
        ...

    async def integrity_check(self) -> str:
        """ "ok" when the stored data is sound, else what is wrong."""
        ...
