"""One SQLite row per drained batch (the node's store, `event_store/sqlite_batches.py`)
against one row per event (the layout before it, `RowPerEventStore` here).

Two measurements, each with both layouts in the same run:

1. the store alone: 100,000 events of ~100 bytes appended in batches of 10,000 (what one drain
   call brings), one transaction each — the write the node's profile blamed (47 % of the node
   process's samples);
2. end to end, as `bench/events.py`: one execution emitting N events, watched from seq 0, on a
   node with each store, beside the raw grpc.aio stream baseline measured in the same phase,
   so that the two layouts compare by their ratio to it.

Run with `python -m bench --only store-rows`.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from bench import raw_stream
from bench.events import MESSAGE_SIZE, _rounds, node_round, raw_round
from bench.node import running_node
from bench.report import Figure, Result, Table, fmt
from kodosumi.v1 import event_pb2
from kodosumid import app as node_app
from kodosumid.config import PoolConfig
from kodosumid.event_store import SqliteEventStore, StatusChange

NAME = "store-rows"


class RowPerEventStore(SqliteEventStore):
    """The layout before: every drained event one row of `events` (which the store still
    reads: the launch's first events and earlier nodes' data live there)."""

    async def append(
        self,
        batches: dict[str, tuple[int, list[bytes]]],
        statuses: dict[str, list[StatusChange]],
    ) -> None:
        rows = [
            (execution_id, first_seq + i, data)
            for execution_id, (first_seq, datas) in batches.items()
            for i, data in enumerate(datas)
        ]
        now = self._clock()
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO events (execution_id, seq, data) VALUES (?, ?, ?)", rows
            )
            await db.executemany(
                "UPDATE executions SET last_seq = max(last_seq, ?) WHERE execution_id = ?",
                [(first + len(datas) - 1, eid) for eid, (first, datas) in batches.items() if datas],
            )
            for execution_id, changes in statuses.items():
                for change in changes:
                    await self._apply_status(db, execution_id, change, now)


def _events(count: int) -> list[bytes]:
    event = raw_stream.sample_event(MESSAGE_SIZE)
    out = []
    for seq in range(1, count + 1):
        event.seq = seq
        out.append(event.SerializeToString())
    return out


async def store_round(kind: type[SqliteEventStore], events: list[bytes], batch: int) -> float:
    """Events per second appended to a fresh store of `kind`, `batch` events a transaction."""
    from kodosumid.event_store import ExecutionRecord

    with tempfile.TemporaryDirectory() as folder:
        store = kind(Path(folder) / "events.sqlite")
        await store.open()
        try:
            record = ExecutionRecord("e" * 32, "f", "u", 1, "", {}, 1)
            await store.create_execution(record, [])
            running = [StatusChange(1, event_pb2.EXECUTION_STATUS_RUNNING, "")]
            start = time.perf_counter()
            for first in range(0, len(events), batch):
                chunk = events[first : first + batch]
                await store.append(
                    {record.execution_id: (first + 1, chunk)},
                    {record.execution_id: running if first == 0 else []},
                )
            elapsed = time.perf_counter() - start
            # Both layouts must hold what was written, in order.
            got, cursor = 0, 0
            while page := await store.read_page(record.execution_id, cursor):
                got, cursor = got + len(page), page[-1][0]
            assert got == len(events), f"{kind.__name__}: {got} of {len(events)} read back"
        finally:
            await store.close()
    return len(events) / elapsed


@contextlib.contextmanager
def node_store(kind: type[SqliteEventStore]) -> Iterator[None]:
    """Nodes started inside use `kind` as their event store."""
    saved = node_app.SqliteEventStore  # type: ignore[attr-defined]
    node_app.SqliteEventStore = kind  # type: ignore[attr-defined]
    try:
        yield
    finally:
        node_app.SqliteEventStore = saved  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def raw_channel() -> AsyncIterator[object]:
    async with raw_stream.raw_stream_server(MESSAGE_SIZE) as (address, tls):
        channel = raw_stream.connect(address, tls)
        try:
            yield channel
        finally:
            await channel.close()


async def end_to_end(count: int, rounds: int) -> dict[str, list[float]]:
    """Rounds alternate raw stream, the node storing a row per event, the node storing a row
    per batch (both nodes up at once), so that a busy machine weighs on all three alike."""
    rates: dict[str, list[float]] = {"raw": [], "row per event": [], "row per batch": []}
    pool = PoolConfig(shared_executors=1, warm_executors=0)
    async with contextlib.AsyncExitStack() as stack:
        with node_store(RowPerEventStore):
            before = await stack.enter_async_context(running_node("rows-before", pool))
        after = await stack.enter_async_context(running_node("rows-after", pool))
        channel = await stack.enter_async_context(raw_channel())
        await raw_round(channel, 1000)
        await node_round(before, 1000)
        await node_round(after, 1000)
        for _ in range(rounds):
            rates["raw"].append(await raw_round(channel, count))
            rates["row per event"].append((await node_round(before, count))[0])
            rates["row per batch"].append((await node_round(after, count))[0])
    return rates


async def benchmark(quick: bool) -> Result:
    count, rounds, batch = (20_000, 1, 10_000) if quick else (100_000, 3, 10_000)
    events = _events(count)
    writes: dict[str, list[float]] = {"row per event": [], "row per batch": []}
    for _ in range(rounds + 1):
        writes["row per event"].append(await store_round(RowPerEventStore, events, batch))
        writes["row per batch"].append(await store_round(SqliteEventStore, events, batch))
    per_event = statistics.median(writes["row per event"][1:] or writes["row per event"])
    per_batch = statistics.median(writes["row per batch"][1:] or writes["row per batch"])
    store_table = Table(
        f"store append alone, {count:,} events of ~{len(events[0])} bytes in batches of "
        f"{batch:,}, median of {rounds} round(s) after a warm-up",
        ["layout", "events/s", "ratio"],
        [
            ["one row per event (before)", fmt(per_event), "1.00"],
            ["one row per batch (node)", fmt(per_batch), f"{per_batch / per_event:.2f}"],
        ],
    )
    rates = await end_to_end(count, rounds)
    raw = statistics.median(rates["raw"])
    row_node = statistics.median(rates["row per event"])
    batch_node = statistics.median(rates["row per batch"])
    row_ratio, batch_ratio = row_node / raw, batch_node / raw
    e2e_table = Table(
        f"end to end (bench/events.py path), {count:,} events, median of {rounds} round(s) "
        "alternating raw / before / node",
        ["path", "events/s", "rounds", "ratio to raw"],
        [
            ["raw grpc.aio stream, 1 msg/event", fmt(raw), _rounds(rates["raw"]), "1.00"],
            [
                "node, one row per event (before)",
                fmt(row_node),
                _rounds(rates["row per event"]),
                f"{row_ratio:.2f}",
            ],
            [
                "node, one row per batch (node)",
                fmt(batch_node),
                _rounds(rates["row per batch"]),
                f"{batch_ratio:.2f}",
            ],
        ],
        [f"end-to-end gain of the batch layout: {batch_ratio / row_ratio:.2f}x"],
    )
    figure = Figure(
        NAME,
        "row per batch, end to end",
        batch_ratio / row_ratio,
        "x",
        "row per event",
        1.0,
        "",
        None,  # context: why the node stores batches
    )
    return Result([store_table, e2e_table], [figure])
