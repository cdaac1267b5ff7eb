"""Unread watchers (issue 11): what 500 streams that never read cost the node.

The node runs as a subprocess (`bench/fanout.toml`, which also offers `emit-bytes`); one
execution stores ~20 MB of events (2,000 events of 10 kB), a client reads it once, then
opens 500 `WatchExecution` streams on it and never reads them. Figure: the node's RSS
growth (VmRSS from /proc) from before the streams to the peak while they stay open.
Baseline: the same streams on a running execution that emits nothing (what 500 open
streams cost without a backlog). Target: growth <= 100 MB.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench import hermetic
from bench.fanout import CONFIG, Peak, _start, _wait_file, rss
from bench.report import Figure, Result, Table, fmt
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import dev_client_files
from kodosumi.v1 import flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc

NAME = "unread-watchers"
TARGET_MIB = 100


async def _launch_and_read(flows: flow_pb2_grpc.FlowServiceStub, count: int, size: int) -> str:
    inputs = {"count": count, "size": size}
    launched = await flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow="emit-bytes", inputs=dict_to_struct(inputs)),
        timeout=60,
    )
    execution_id = launched.execution.execution_id
    request = flow_pb2.WatchExecutionRequest(execution_id=execution_id)
    async for _ in flows.WatchExecution(request, timeout=300):
        pass
    return execution_id


async def _unread(state: Path, pid: int, execution_id: str, streams: int) -> int:
    address = json.loads((state / "node.json").read_text())["address"]
    tls = dev_client_files(state).read()
    channels = [open_channel(address, tls, expect=ServerExpectation.node()) for _ in range(5)]
    nodes = node_pb2_grpc.NodeServiceStub(channels[0])
    before = rss(pid)
    peak = Peak(pid)
    request = flow_pb2.WatchExecutionRequest(execution_id=execution_id)
    calls = [
        flow_pb2_grpc.FlowServiceStub(channels[i % 5]).WatchExecution(request, timeout=300)
        for i in range(streams)
    ]
    try:
        for _ in range(300):
            info = await nodes.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
            if info.node.load.watchers >= streams:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(5.0)  # the streams fill their windows and stay blocked
        return peak.stop() - before
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


async def benchmark(quick: bool) -> Result:
    streams = 500
    state = hermetic.scratch("unread-node-")
    node = await _start(
        ["-m", "kodosumid", "--config", str(CONFIG), "--state-dir", str(state),
         "--listen", "127.0.0.1:0", "--log-level", "WARNING"],
        state.parent / f"{state.name}.log",
    )  # fmt: skip
    try:
        await _wait_file(state / "node.json", node)
        assert node.pid is not None
        address = json.loads((state / "node.json").read_text())["address"]
        channel = open_channel(
            address, dev_client_files(state).read(), expect=ServerExpectation.node()
        )
        flows = flow_pb2_grpc.FlowServiceStub(channel)
        idle = await flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="sleepy", inputs=dict_to_struct({"seconds": 600})),
            timeout=60,
        )
        big = await _launch_and_read(flows, 2000, 10_000)
        baseline = await _unread(state, node.pid, idle.execution.execution_id, streams) / 2**20
        await flows.CancelExecution(
            flow_pb2.CancelExecutionRequest(execution_id=idle.execution.execution_id), timeout=30
        )
        await channel.close()
        growth = await _unread(state, node.pid, big, streams) / 2**20
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    table = Table(
        f"unread watchers: {streams} streams that never read",
        ["execution watched", "node RSS growth MiB"],
        [
            ["running, nothing stored yet (baseline)", fmt(baseline)],
            ["2,000 events of 10 kB (~20 MB)", fmt(growth)],
        ],
    )
    figure = Figure(
        NAME, f"node RSS growth, {streams} unread streams, ~20 MB stream", growth, "MiB",
        "same streams, idle execution", baseline, f"<= {TARGET_MIB} MB", growth <= TARGET_MIB,
    )  # fmt: skip
    return Result([table], [figure])
