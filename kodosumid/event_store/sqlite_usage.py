"""The SQLite store's usage tables (`usage_model.py`): writes inside a drain batch's
transaction, an execution's attempts, the roll-up of its children, and grouped summaries.

`usage_attempts` holds one row per (execution, attempt) with the execution's owner, flow and
parent copied in when it is written (so a summary needs no join and outlives retention);
`usage_models` its per-model calls and tokens; `usage_groups` the owner's groups of each
execution. Summaries are computed by SQLite (GROUP BY one key, keyset-paged by that key), so
a listing of a year of runs reads no more rows into Python than its page holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from kodosumid.event_store.usage_model import (
    AttemptUsage,
    ModelUse,
    UsagePage,
    UsageQuery,
    UsageRow,
    UsageTotals,
    decode_key_token,
    encode_key_token,
    row_size,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_attempts (
    execution_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT NOT NULL,
    flow TEXT NOT NULL,
    parent_execution_id TEXT NOT NULL,
    node TEXT NOT NULL,
    at_ns INTEGER NOT NULL,
    source TEXT NOT NULL,
    note TEXT NOT NULL,
    wall_seconds REAL NOT NULL,
    cpu_seconds REAL NOT NULL,
    llm_calls INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    input_bytes INTEGER NOT NULL,
    output_bytes INTEGER NOT NULL,
    artifact_bytes INTEGER NOT NULL,
    PRIMARY KEY (execution_id, attempt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_attempts_at ON usage_attempts (at_ns);
CREATE INDEX IF NOT EXISTS usage_attempts_parent ON usage_attempts (parent_execution_id);
CREATE TABLE IF NOT EXISTS usage_models (
    execution_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    PRIMARY KEY (execution_id, attempt, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_groups (
    execution_id TEXT NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (execution_id, grp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS executions_parent ON executions (parent_execution_id);
"""

_FIGURES = (
    "wall_seconds, cpu_seconds, llm_calls, tool_calls, input_bytes, output_bytes, artifact_bytes"
)
_SUMS = (
    "COUNT(DISTINCT u.execution_id), COUNT(*), SUM(u.wall_seconds), SUM(u.cpu_seconds), "
    "SUM(u.llm_calls), SUM(u.tool_calls), SUM(u.input_bytes), SUM(u.output_bytes), "
    "SUM(u.artifact_bytes)"
)
_DAY = "strftime('%Y-%m-%d', u.at_ns / 1000000000, 'unixepoch')"
_MONTH = "strftime('%Y-%m', u.at_ns / 1000000000, 'unixepoch')"
_KEYS = {
    "": "''",
    "user": "u.owner",
    "group": "COALESCE(g.grp, '')",
    "flow": "u.flow",
    "node": "u.node",
    "day": _DAY,
    "month": _MONTH,
    "execution": "u.execution_id",
}
# Executions whose descendants a roll-up follows at most (a run fanning out wider is summed
# over the first ones found and says nothing more).
MAX_DESCENDANTS = 10_000
_CHUNK = 500


async def write(db: aiosqlite.Connection, usage: dict[str, list[AttemptUsage]]) -> None:
    """Store attempts in the caller's transaction; an attempt stored already stays as it is
    (the engine's figures win over the node's, a re-sent batch changes nothing)."""
    for execution_id, attempts in usage.items():
        for a in attempts:
            cursor = await db.execute(
                f"INSERT OR IGNORE INTO usage_attempts (execution_id, attempt, owner, flow, "
                f"parent_execution_id, node, at_ns, source, note, {_FIGURES}) "
                "SELECT execution_id, ?, owner, flow, parent_execution_id, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ? FROM executions WHERE execution_id = ?",
                (
                    a.attempt,
                    a.node,
                    a.at_ns,
                    a.source,
                    a.note,
                    a.wall_seconds,
                    a.cpu_seconds,
                    a.llm_calls,
                    a.tool_calls,
                    a.input_bytes,
                    a.output_bytes,
                    a.artifact_bytes,
                    execution_id,
                ),
            )
            if cursor.rowcount != 1:
                continue  # stored before, or an execution this store does not hold
            await db.executemany(
                "INSERT INTO usage_models (execution_id, attempt, model, calls, input_tokens, "
                "output_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (execution_id, a.attempt, m.model, m.calls, m.input_tokens, m.output_tokens)
                    for m in a.models
                ],
            )
            await keep_groups(db, execution_id, a.groups)


async def keep_groups(db: aiosqlite.Connection, execution_id: str, groups: Iterable[str]) -> None:
    await db.executemany(
        "INSERT OR IGNORE INTO usage_groups (execution_id, grp) VALUES (?, ?)",
        [(execution_id, g) for g in groups],
    )


async def groups_of(db: aiosqlite.Connection, execution_id: str) -> tuple[str, ...]:
    return tuple(
        str(g)
        for (g,) in await db.execute_fetchall(
            "SELECT grp FROM usage_groups WHERE execution_id = ? ORDER BY grp", (execution_id,)
        )
    )


async def attempts_of(db: aiosqlite.Connection, execution_id: str) -> list[AttemptUsage]:
    rows = await db.execute_fetchall(
        f"SELECT attempt, {_FIGURES}, at_ns, source, note, node FROM usage_attempts "
        "WHERE execution_id = ? ORDER BY attempt",
        (execution_id,),
    )
    models: dict[int, list[ModelUse]] = {}
    for attempt, model, calls, tin, tout in await db.execute_fetchall(
        "SELECT attempt, model, calls, input_tokens, output_tokens FROM usage_models "
        "WHERE execution_id = ? ORDER BY attempt, model",
        (execution_id,),
    ):
        models.setdefault(int(attempt), []).append(ModelUse(str(model), calls, tin, tout))
    groups = await groups_of(db, execution_id)
    return [
        AttemptUsage(
            attempt=int(r[0]),
            wall_seconds=float(r[1]),
            cpu_seconds=float(r[2]),
            llm_calls=int(r[3]),
            tool_calls=int(r[4]),
            input_bytes=int(r[5]),
            output_bytes=int(r[6]),
            artifact_bytes=int(r[7]),
            models=tuple(models.get(int(r[0]), ())),
            at_ns=int(r[8]),
            source=str(r[9]),
            note=str(r[10]),
            node=str(r[11]),
            groups=groups,
        )
        for r in rows
    ]


async def descendants(db: aiosqlite.Connection, execution_id: str) -> list[str]:
    """Children at any depth, by the executions' parent links and by the usage rows' (a
    child deleted by retention still has its usage)."""
    found: list[str] = []
    seen = {execution_id}
    level = [execution_id]
    while level and len(found) < MAX_DESCENDANTS:
        following: list[str] = []
        for start in range(0, len(level), _CHUNK):
            chunk = level[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = await db.execute_fetchall(
                f"SELECT execution_id FROM executions WHERE parent_execution_id IN ({marks}) "
                "UNION SELECT execution_id FROM usage_attempts WHERE parent_execution_id IN "
                f"({marks})",
                (*chunk, *chunk),
            )
            for (child,) in rows:
                if str(child) not in seen:
                    seen.add(str(child))
                    following.append(str(child))
        found += following
        level = following
    return found[:MAX_DESCENDANTS]


async def totals_of(db: aiosqlite.Connection, execution_ids: list[str]) -> UsageTotals:
    """The attempts of these executions, summed."""
    total = UsageTotals()
    for start in range(0, len(execution_ids), _CHUNK):
        chunk = execution_ids[start : start + _CHUNK]
        where = f"u.execution_id IN ({', '.join('?' * len(chunk))})"
        rows = await _summary_rows(db, "''", "", where, chunk, "")
        for _, totals in rows:
            total = total.plus(totals)
    return total


def _filters(query: UsageQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.owner is not None:
        where.append("u.owner = ?")
        params.append(query.owner)
    if query.flow:
        where.append("u.flow = ?")
        params.append(query.flow)
    if query.node:
        where.append("u.node = ?")
        params.append(query.node)
    if query.since_ns:
        where.append("u.at_ns >= ?")
        params.append(query.since_ns)
    if query.until_ns:
        where.append("u.at_ns < ?")
        params.append(query.until_ns)
    if query.group and query.group_by != "group":
        where.append(
            "EXISTS (SELECT 1 FROM usage_groups f WHERE f.execution_id = u.execution_id "
            "AND f.grp = ?)"
        )
        params.append(query.group)
    if query.group and query.group_by == "group":
        where.append("g.grp = ?")
        params.append(query.group)
    return where, params


async def summarize(db: aiosqlite.Connection, query: UsageQuery) -> UsagePage:
    key = _KEYS[query.group_by]
    join = (
        "LEFT JOIN usage_groups g ON g.execution_id = u.execution_id"
        if query.group_by == "group"
        else ""
    )
    where, params = _filters(query)
    if query.page_token:
        where.append(f"{key} > ?")
        params.append(decode_key_token(query.page_token))
    found = await _summary_rows(
        db, key, join, " AND ".join(where), params, f"LIMIT {query.page_size + 1}"
    )
    more = len(found) > query.page_size
    found = found[: query.page_size]
    rows = [UsageRow(k, t) for k, t in found]
    if query.max_bytes:
        total = 0
        for i, row in enumerate(rows):
            total += row_size(row)
            if total > query.max_bytes and i > 0:
                rows, more = rows[:i], True
                break
    token = encode_key_token(rows[-1].key) if more and rows else ""
    return UsagePage(rows, token)


async def _summary_rows(
    db: aiosqlite.Connection,
    key: str,
    join: str,
    where: str,
    params: Sequence[Any],
    limit: str,
) -> list[tuple[str, UsageTotals]]:
    condition = f"WHERE {where}" if where else ""
    rows = await db.execute_fetchall(
        f"SELECT {key} AS k, {_SUMS} FROM usage_attempts u {join} {condition} "
        f"GROUP BY k ORDER BY k {limit}",
        tuple(params),
    )
    sums = [(str(r[0]), r) for r in rows]
    if not sums:
        return []
    keys = [k for k, _ in sums]
    models: dict[str, list[ModelUse]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        in_keys = f"{key} IN ({', '.join('?' * len(chunk))})"
        model_where = f"WHERE {where} AND {in_keys}" if where else f"WHERE {in_keys}"
        for k, model, calls, tin, tout in await db.execute_fetchall(
            f"SELECT {key} AS k, m.model, SUM(m.calls), SUM(m.input_tokens), "
            f"SUM(m.output_tokens) FROM usage_attempts u {join} JOIN usage_models m ON "
            "m.execution_id = u.execution_id AND m.attempt = u.attempt "
            f"{model_where} GROUP BY k, m.model ORDER BY k, m.model",
            (*params, *chunk),
        ):
            models.setdefault(str(k), []).append(
                ModelUse(str(model), int(calls), int(tin), int(tout))
            )
    return [
        (
            k,
            UsageTotals(
                runs=int(r[1]),
                attempts=int(r[2]),
                wall_seconds=float(r[3] or 0),
                cpu_seconds=float(r[4] or 0),
                llm_calls=int(r[5] or 0),
                tool_calls=int(r[6] or 0),
                input_bytes=int(r[7] or 0),
                output_bytes=int(r[8] or 0),
                artifact_bytes=int(r[9] or 0),
                models=tuple(models.get(k, ())),
            ),
        )
        for k, r in sums
    ]
