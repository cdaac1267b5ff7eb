"""The memory store's usage (`usage_model.py`): what `sqlite_usage.py` keeps and answers, in
dicts, held to the same contract suite (`tests/event_store/test_store_contract.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from kodosumid.event_store.model import ExecutionRecord
from kodosumid.event_store.sqlite_usage import MAX_DESCENDANTS
from kodosumid.event_store.usage_model import (
    AttemptUsage,
    UsagePage,
    UsageQuery,
    UsageRow,
    UsageTotals,
    decode_key_token,
    encode_key_token,
    row_size,
)


@dataclass(frozen=True, slots=True)
class _Stored:
    usage: AttemptUsage
    owner: str
    flow: str
    parent: str


def _day(at_ns: int) -> str:
    return datetime.fromtimestamp(at_ns // 1_000_000_000, UTC).strftime("%Y-%m-%d")


class MemoryUsage:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], _Stored] = {}
        self._groups: dict[str, set[str]] = {}

    def write(
        self, usage: dict[str, list[AttemptUsage]], row_of: Callable[[str], ExecutionRecord | None]
    ) -> None:
        for execution_id, attempts in usage.items():
            record = row_of(execution_id)
            if record is None:
                continue
            for a in attempts:
                if (execution_id, a.attempt) in self._rows:
                    continue  # the first write stands
                self._rows[(execution_id, a.attempt)] = _Stored(
                    a, record.owner, record.flow, record.parent_execution_id
                )
                self._groups.setdefault(execution_id, set()).update(a.groups)

    def keep_groups(self, execution_id: str, groups: Iterable[str]) -> None:
        self._groups.setdefault(execution_id, set()).update(groups)

    def groups_of(self, execution_id: str) -> tuple[str, ...]:
        return tuple(sorted(self._groups.get(execution_id, ())))

    def attempts_of(self, execution_id: str) -> list[AttemptUsage]:
        groups = self.groups_of(execution_id)
        found = [
            replace(s.usage, groups=groups)
            for (eid, _), s in self._rows.items()
            if eid == execution_id
        ]
        return sorted(found, key=lambda a: a.attempt)

    def descendants(self, execution_id: str, parents: dict[str, str]) -> list[str]:
        """`parents`: each execution's parent, from the store's rows; usage rows add theirs."""
        links = dict(parents)
        for (eid, _), s in self._rows.items():
            links.setdefault(eid, s.parent)
        children: dict[str, list[str]] = {}
        for eid, parent in links.items():
            if parent:
                children.setdefault(parent, []).append(eid)
        found: list[str] = []
        seen = {execution_id}
        level = [execution_id]
        while level and len(found) < MAX_DESCENDANTS:
            following = [c for p in level for c in children.get(p, ()) if c not in seen]
            seen.update(following)
            found += following
            level = following
        return found[:MAX_DESCENDANTS]

    def totals_of(self, execution_ids: list[str]) -> UsageTotals:
        wanted = set(execution_ids)
        rows = [s.usage for (eid, _), s in self._rows.items() if eid in wanted]
        runs = len({eid for (eid, _) in self._rows if eid in wanted})
        return UsageTotals.of(rows, runs=runs)

    def summarize(self, query: UsageQuery) -> UsagePage:
        after = decode_key_token(query.page_token) if query.page_token else None
        grouped: dict[str, list[tuple[str, AttemptUsage]]] = {}
        for (eid, _), s in self._rows.items():
            a = s.usage
            groups = self._groups.get(eid, set())
            if query.owner is not None and s.owner != query.owner:
                continue
            if query.flow and s.flow != query.flow:
                continue
            if query.node and a.node != query.node:
                continue
            if query.since_ns and a.at_ns < query.since_ns:
                continue
            if query.until_ns and a.at_ns >= query.until_ns:
                continue
            if query.group and query.group not in groups:
                continue
            for key in self._keys(query, eid, s, groups):
                if after is None or key > after:
                    grouped.setdefault(key, []).append((eid, a))
        keys = sorted(grouped)
        more = len(keys) > query.page_size
        rows = [
            UsageRow(
                k, UsageTotals.of((a for _, a in grouped[k]), runs=len({e for e, _ in grouped[k]}))
            )
            for k in keys[: query.page_size]
        ]
        if query.max_bytes:
            total = 0
            for i, row in enumerate(rows):
                total += row_size(row)
                if total > query.max_bytes and i > 0:
                    rows, more = rows[:i], True
                    break
        return UsagePage(rows, encode_key_token(rows[-1].key) if more and rows else "")

    @staticmethod
    def _keys(query: UsageQuery, eid: str, s: _Stored, groups: set[str]) -> list[str]:
        by = query.group_by
        if by == "group":
            if query.group:
                return [query.group]
            return sorted(groups) or [""]
        key = {
            "": "",
            "user": s.owner,
            "flow": s.flow,
            "node": s.usage.node,
            "day": _day(s.usage.at_ns),
            "month": _day(s.usage.at_ns)[:7],
            "execution": eid,
        }[by]
        return [key]
