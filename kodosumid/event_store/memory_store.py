"""An `EventStore` in memory: for domain tests and nodes whose executions need not survive.

It keeps what the SQLite store keeps and answers the same; the contract suite
(`tests/event_store/test_store_contract.py`) holds both to it. Writes happen between two
awaits, so they are atomic for every reader on the event loop.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from kodosumid.event_store.memory_usage import MemoryUsage
from kodosumid.event_store.model import (
    DuplicateExecution,
    EndedRun,
    ExecutionRecord,
    Page,
    StatusChange,
    decode_token,
    encode_token,
    inputs_json,
    record_size,
)
from kodosumid.event_store.store import REPLAY_PAGE_BYTES, REPLAY_PAGE_EVENTS
from kodosumid.event_store.usage_model import AttemptUsage, UsagePage, UsageQuery, UsageTotals


@dataclass(slots=True)
class _Stream:
    seqs: list[int] = field(default_factory=list)  # sorted
    data: dict[int, bytes] = field(default_factory=dict)

    def add(self, seq: int, data: bytes) -> None:
        if seq in self.data:
            return  # seen before: the first write stands
        self.data[seq] = data
        bisect.insort(self.seqs, seq)


class MemoryEventStore:
    def __init__(self, *, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._rows: dict[str, ExecutionRecord] = {}
        self._streams: dict[str, _Stream] = {}
        self._usage = MemoryUsage()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create_execution(
        self, record: ExecutionRecord, events: list[bytes], groups: Sequence[str] = ()
    ) -> None:
        if record.execution_id in self._rows:
            raise DuplicateExecution(record.execution_id)
        self._usage.keep_groups(record.execution_id, groups)
        # A copy of the inputs, as a database would keep: the caller's dict may change later.
        inputs = json.loads(json.dumps(record.inputs))
        self._rows[record.execution_id] = replace(record, inputs=inputs, last_seq=len(events))
        stream = self._streams.setdefault(record.execution_id, _Stream())
        for i, data in enumerate(events):
            stream.add(i + 1, data)

    async def append(
        self,
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
        usage: dict[str, list[AttemptUsage]] | None = None,
    ) -> None:
        now = self._clock()
        for execution_id, (first_seq, datas) in batches.items():
            stream = self._streams.setdefault(execution_id, _Stream())
            for i, data in enumerate(datas):
                stream.add(first_seq + i, data)
            row = self._rows.get(execution_id)
            if row is not None and datas:
                last = max(row.last_seq, first_seq + len(datas) - 1)
                self._rows[execution_id] = replace(row, last_seq=last)
        for execution_id, changes in statuses.items():
            for change in changes:
                self._apply_status(execution_id, change, now)
        if usage:
            self._usage.write(usage, self._rows.get)

    def _apply_status(self, execution_id: str, change: StatusChange, now: int) -> None:
        row = self._rows.get(execution_id)
        if row is None:
            return
        start_ns = row.start_ns
        if start_ns == 0 and change.status == event_pb2.EXECUTION_STATUS_RUNNING:
            start_ns = now
        end_ns = now if change.status in TERMINAL else row.end_ns
        self._rows[execution_id] = replace(
            row,
            status=change.status,
            status_reason=change.reason,
            start_ns=start_ns,
            end_ns=end_ns,
        )

    async def set_executor(self, execution_id: str, executor: str) -> None:
        row = self._rows.get(execution_id)
        if row is not None:
            self._rows[execution_id] = replace(row, executor=executor)

    async def set_attempt(self, execution_id: str, attempt: int) -> None:
        row = self._rows.get(execution_id)
        if row is not None:
            self._rows[execution_id] = replace(row, attempt=attempt)

    async def delete_executions(self, execution_ids: list[str]) -> None:
        for execution_id in execution_ids:
            self._rows.pop(execution_id, None)
            self._streams.pop(execution_id, None)

    async def ended_before(self, end_ns: int, limit: int = 500) -> list[str]:
        ended = [r for r in self._rows.values() if r.terminal and 0 < r.end_ns < end_ns]
        ended.sort(key=lambda r: r.end_ns)
        return [r.execution_id for r in ended[:limit]]

    async def ended_since(self, since_ns: int, limit: int) -> list[EndedRun]:
        ended = [r for r in self._rows.values() if r.terminal and r.end_ns >= max(since_ns, 1)]
        ended.sort(key=lambda r: r.end_ns, reverse=True)
        return [EndedRun(r.flow, r.status, r.start_ns, r.end_ns) for r in ended[:limit]]

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        return self._rows.get(execution_id)

    async def read_page(
        self,
        execution_id: str,
        after_seq: int,
        max_events: int = REPLAY_PAGE_EVENTS,
        max_bytes: int = REPLAY_PAGE_BYTES,
    ) -> list[tuple[int, bytes]]:
        stream = self._streams.get(execution_id)
        if stream is None:
            return []
        start = bisect.bisect_right(stream.seqs, after_seq)
        page: list[tuple[int, bytes]] = []
        total = 0
        for seq in stream.seqs[start : start + max(max_events, 1)]:
            data = stream.data[seq]
            total += len(data)
            if page and total > max_bytes:
                break
            page.append((seq, data))
        return page

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int = 5000
    ) -> list[tuple[int, bytes]]:
        return await self.read_page(execution_id, after_seq, limit, REPLAY_PAGE_BYTES)

    async def stored_bytes(self, owner: str) -> int:
        return sum(
            len(data)
            for execution_id, row in self._rows.items()
            if row.owner == owner and execution_id in self._streams
            for data in self._streams[execution_id].data.values()
        )

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
        wanted = frozenset(statuses)
        after: tuple[int, str] | None = decode_token(page_token) if page_token else None
        found = [
            r
            for r in self._rows.values()
            if (owner is None or r.owner == owner)
            and (not wanted or r.status in wanted)
            and (not flow or r.flow == flow)
            and (after is None or (r.create_ns, r.execution_id) < after)
        ]
        found.sort(key=lambda r: (r.create_ns, r.execution_id), reverse=True)
        more = len(found) > page_size
        page = found[:page_size]
        if max_bytes:
            total = 0
            for i, record in enumerate(page):
                total += record_size(record, len(inputs_json(record.inputs)))
                if total > max_bytes and i > 0:
                    page, more = page[:i], True
                    break
        token = encode_token(page[-1].create_ns, page[-1].execution_id) if more and page else ""
        return Page(page, token)

    async def groups_of(self, execution_id: str) -> tuple[str, ...]:
        return self._usage.groups_of(execution_id)

    async def usage_of(self, execution_id: str) -> list[AttemptUsage]:
        return self._usage.attempts_of(execution_id)

    async def children_usage(self, execution_id: str) -> UsageTotals:
        parents = {eid: r.parent_execution_id for eid, r in self._rows.items()}
        return self._usage.totals_of(self._usage.descendants(execution_id, parents))

    async def summarize_usage(self, query: UsageQuery) -> UsagePage:
        return self._usage.summarize(query)

    async def unfinished(self) -> list[ExecutionRecord]:
        return [r for r in self._rows.values() if not r.terminal]

    async def integrity_check(self) -> str:
        return "ok"
