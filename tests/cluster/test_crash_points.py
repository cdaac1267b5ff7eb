"""Crash the node at each named point of drain -> store -> publish -> acknowledge, restart it,
and check that every event the flow emitted is stored exactly once, in order, with no gap,
that a watcher resuming through the restart sees exactly that, and that SQLite is intact."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import grpc
import pytest

from kodosumi.v1 import event_pb2
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.crashpoints import POINTS
from tests.cluster.test_external_ray import CONFIG
from tests.node.helpers import collect, launch, statuses
from tests.node.test_daemon import REPO, Daemon

TICKS = 60


def _ended(events: list[event_pb2.Event]) -> bool:
    return bool(events) and events[-1].status_changed.status == event_pb2.EXECUTION_STATUS_SUCCEEDED


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
async def test_crash_point(point: str, ray_head: str, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO, address=ray_head))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    received: list[event_pb2.Event] = []
    try:
        node.start()
        channel, flows = node.stub()
        execution_id = await launch(flows, "ticking", {"ticks": TICKS, "interval": 0.1})
        received += await collect(flows, execution_id, limit=5)
        await channel.close()  # type: ignore[attr-defined]
        for crash_after in (2, 5):
            if _ended(received):
                break
            node.stop()
            node.start(env={"KODOSUMI_CRASH_AT": f"{point}:{crash_after}"})
            channel, flows = node.stub()
            after = received[-1].seq if received else 0
            with contextlib.suppress(grpc.aio.AioRpcError):  # the node crashes under the watch
                received += await collect(flows, execution_id, after_seq=after, timeout=60)
            await channel.close()  # type: ignore[attr-defined]
            assert node.process is not None
            if not _ended(received):
                assert node.process.wait(30) == 86, "the node did not crash at the crash point"
        node.stop()
        node.start()
        channel, flows = node.stub()
        after = received[-1].seq if received else 0
        received += await collect(flows, execution_id, after_seq=after)
        await channel.close()  # type: ignore[attr-defined]
    finally:
        node.stop()

    assert [e.seq for e in received] == list(range(1, len(received) + 1))
    assert [e.progress.message for e in received if e.HasField("progress")] == [
        f"tick {i}" for i in range(TICKS)
    ]
    assert statuses(received)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    with sqlite3.connect(node.state_dir / "events.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Nothing stored twice: per-event rows (the launch's) and drained-batch rows together
        # hold exactly one copy of each event.
        (rows,) = db.execute(
            "SELECT count(*) FROM events WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        (batched,) = db.execute(
            "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM event_batches "
            "WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()
    assert rows + batched == len(received)
    # Through the store: it keeps the launch's inputs event without the inputs (stored once).
    store = SqliteEventStore(node.state_dir / "events.sqlite")
    await store.open()
    stored: list[tuple[int, bytes]] = []
    try:
        while page := await store.read_page(execution_id, len(stored)):
            stored += page
    finally:
        await store.close()
    assert [seq for seq, _ in stored] == list(range(1, len(received) + 1))
    stored_events = [event_pb2.Event.FromString(data) for _, data in stored]
    assert stored_events == received
