"""Jobs in the gateway's own SQLite database (`<state>/jobs.sqlite`), WAL, private files.

One row per job. `create` is unique per (service, purchaser id): two concurrent start_job
calls with one `identifier_from_purchaser` make one job. `update` writes a job only if its
`revision` is still the one the caller read (compare-and-set) and bumps it; a caller that
lost the race gets None and reads again. So a step (request payment, launch, submit the
result, release funds) that is recorded before and after it is done happens once, also
across a crash: the row says which steps are done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.jobs import Job, JobState, PaymentState
from kodosumi import sqlite

__all__ = ["JobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    purchaser TEXT NOT NULL,
    input_json TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    buyer TEXT NOT NULL,
    state TEXT NOT NULL,
    payment TEXT NOT NULL,
    payment_ref TEXT NOT NULL,
    payment_info TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    node_status TEXT NOT NULL,
    open_inputs TEXT NOT NULL,
    result TEXT NOT NULL,
    result_hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    launching_at REAL NOT NULL,
    revision INTEGER NOT NULL,
    UNIQUE (service, purchaser)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE TABLE IF NOT EXISTS artifacts (
    job_id TEXT NOT NULL,
    artifact_id TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, artifact_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_execution ON jobs (execution_id)
    WHERE execution_id != '';
"""

_COLUMNS = (
    "job_id, service, purchaser, input_json, input_hash, buyer, state, payment, payment_ref, "
    "payment_info, execution_id, node_status, open_inputs, result, result_hash, reason, "
    "created_at, updated_at, launching_at, revision"
)


def _row(job: Job) -> tuple[Any, ...]:
    return (
        job.job_id,
        job.service,
        job.purchaser,
        json.dumps(job.input_data),
        job.input_hash,
        job.buyer,
        str(job.state),
        str(job.payment),
        job.payment_ref,
        json.dumps(job.payment_info),
        job.execution_id,
        job.node_status,
        json.dumps(list(job.open_inputs)),
        job.result,
        job.result_hash,
        job.reason,
        job.created_at,
        job.updated_at,
        job.launching_at,
        job.revision,
    )


def _job(row: Any) -> Job:
    return Job(
        job_id=row[0],
        service=row[1],
        purchaser=row[2],
        input_data=json.loads(row[3]),
        input_hash=row[4],
        buyer=row[5],
        state=JobState(row[6]),
        payment=PaymentState(row[7]),
        payment_ref=row[8],
        payment_info=json.loads(row[9]),
        execution_id=row[10],
        node_status=row[11],
        open_inputs=tuple(json.loads(row[12])),
        result=row[13],
        result_hash=row[14],
        reason=row[15],
        created_at=row[16],
        updated_at=row[17],
        launching_at=row[18],
        revision=row[19],
    )


class JobStore:
    def __init__(self, db: aiosqlite.Connection, now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._now = now

    @classmethod
    async def open(cls, path: Path | None, now: Callable[[], float] = time.time) -> JobStore:
        # FULL: a job the gateway answered for (its payment reference) survives a power cut.
        db = await sqlite.connect(path, synchronous="FULL")
        await db.executescript(_SCHEMA)
        return cls(db, now)

    async def close(self) -> None:
        await self._db.close()

    async def create(self, job: Job) -> tuple[Job, bool]:
        """Store a new job; (the job, True), or (the existing one of that service and
        purchaser, False)."""
        now = self._now()
        fresh = job.but(created_at=now, updated_at=now, revision=1)
        cursor = await self._db.execute(
            f"INSERT OR IGNORE INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * 20)})",
            _row(fresh),
        )
        if cursor.rowcount == 1:
            return fresh, True
        existing = await self.by_purchaser(job.service, job.purchaser)
        assert existing is not None
        return existing, False

    async def update(self, job: Job, **changes: Any) -> Job | None:
        """`job` with `changes` if nobody changed it since it was read, else None."""
        new = job.but(**changes, updated_at=self._now(), revision=job.revision + 1)
        row = _row(new)
        cursor = await self._db.execute(
            f"UPDATE jobs SET ({_COLUMNS}) = ({', '.join('?' * 20)}) "
            "WHERE job_id = ? AND revision = ?",
            (*row, job.job_id, job.revision),
        )
        return new if cursor.rowcount == 1 else None

    async def get(self, job_id: str) -> Job | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
        ) as c:
            row = await c.fetchone()
        return _job(row) if row else None

    async def by_purchaser(self, service: str, purchaser: str) -> Job | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE service = ? AND purchaser = ?",
            (service, purchaser),
        ) as c:
            row = await c.fetchone()
        return _job(row) if row else None

    async def active(self) -> list[Job]:
        """Jobs with work left: not terminal, or terminal with money not yet settled."""
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE state NOT IN ('completed', 'failed') "
            "OR (state = 'completed' AND payment = 'locked') "
            "OR (state = 'failed' AND payment IN ('requested', 'locked')) ORDER BY created_at"
        ) as c:
            rows = await c.fetchall()
        return [_job(r) for r in rows]

    async def put_artifact(
        self, job_id: str, artifact_id: str, name: str, media_type: str, data: bytes
    ) -> None:
        """Keep an inline artifact of a job (the same one again replaces it: a replayed
        stream writes what it wrote before)."""
        await self._db.execute(
            "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)",
            (job_id, artifact_id, name, media_type, data),
        )

    async def artifact(self, job_id: str, artifact_id: str) -> tuple[str, str, bytes] | None:
        async with self._db.execute(
            "SELECT name, media_type, data FROM artifacts WHERE job_id = ? AND artifact_id = ?",
            (job_id, artifact_id),
        ) as c:
            row = await c.fetchone()
        return (row[0], row[1], bytes(row[2])) if row else None

    async def claimed_executions(self) -> set[str]:
        async with self._db.execute("SELECT execution_id FROM jobs WHERE execution_id != ''") as c:
            return {r[0] for r in await c.fetchall()}

    async def counts(self) -> dict[str, int]:
        async with self._db.execute("SELECT state, count(*) FROM jobs GROUP BY state") as c:
            return {r[0]: r[1] for r in await c.fetchall()}
