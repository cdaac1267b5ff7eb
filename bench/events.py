"""End-to-end events per second of one execution, beside a raw grpc.aio server stream.

The node path: `LaunchExecution` of `bench.flows:emit_many` (N progress events of about 100
bytes) → the engine's buffer in the executor actor → the node's drain loop → one SQLite
transaction per drained batch → fan-out → `WatchExecution` to a client that parses every
response. Timed from the launch call to the terminal event at the client.

The baseline: a plain grpc.aio server stream over mTLS loopback sending N messages of the
same size, one per event (`bench.raw_stream`). Both servers and the client run in this
process on one event loop, so both pay the same client-side cost. Rounds alternate
baseline and node after a small warm-up of each; the table shows medians.
Target: node >= 3 x baseline.
"""

from __future__ import annotations

import statistics
import time

from bench import raw_stream
from bench.node import BenchNode, running_node, terminal_status
from bench.report import Figure, Result, Table, fmt
from kodosumid.config import PoolConfig

NAME = "events"
MESSAGE_SIZE = 46  # characters of progress message: ~100-byte events with ids, seq and time
TARGET_RATIO = 3.0


async def node_round(node: BenchNode, count: int) -> tuple[float, int]:
    """(events per second, events received) for one execution emitting `count` events."""
    start = time.perf_counter()
    execution_id = await node.launch("emit-many", {"count": count, "size": MESSAGE_SIZE})
    received = 0
    last_seq = 0
    call = node.watch(execution_id)
    async for response in call:
        received += len(response.events)
        last_seq = response.events[-1].seq
        if terminal_status(response):
            call.cancel()  # see "stuck watcher" in docs/performance.md
            break
    elapsed = time.perf_counter() - start
    if last_seq != received or received < count:
        raise RuntimeError(f"node stream: {received} events received, last seq {last_seq}")
    return received / elapsed, received


async def raw_round(channel: object, count: int) -> float:
    start = time.perf_counter()
    received = await raw_stream.receive(channel, count)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    if received != count:
        raise RuntimeError(f"raw stream: {received} of {count} messages")
    return received / elapsed


async def benchmark(quick: bool) -> Result:
    count = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    node_rates: list[float] = []
    raw_rates: list[float] = []
    event_bytes = raw_stream.sample_event(MESSAGE_SIZE).ByteSize()
    pool = PoolConfig(shared_executors=1, warm_executors=0)
    async with (
        running_node("events", pool) as node,
        raw_stream.raw_stream_server(MESSAGE_SIZE) as (address, tls),
    ):
        channel = raw_stream.connect(address, tls)
        try:
            await raw_round(channel, 1000)  # warm-up: handshake, first import of the flow
            await node_round(node, 1000)
            for _ in range(rounds):
                raw_rates.append(await raw_round(channel, count))
                node_rates.append((await node_round(node, count))[0])
        finally:
            await channel.close()
    raw, ours = statistics.median(raw_rates), statistics.median(node_rates)
    ratio = ours / raw
    table = Table(
        f"events/s of one execution, {count:,} events of ~{event_bytes} bytes, "
        f"median of {rounds} round(s)",
        ["path", "events/s", "rounds", "ratio"],
        [
            ["raw grpc.aio stream, 1 msg/event", fmt(raw), _rounds(raw_rates), "1.00"],
            ["node: launch→actor→SQLite→watch", fmt(ours), _rounds(node_rates), f"{ratio:.2f}"],
        ],
        [f"target: node >= {TARGET_RATIO:g} x raw stream"],
    )
    figure = Figure(
        NAME,
        "end-to-end events/s",
        ours,
        "ev/s",
        "raw grpc stream",
        raw,
        f">= {TARGET_RATIO:g}x raw",
        ratio >= TARGET_RATIO,
    )
    return Result([table], [figure])


def _rounds(values: list[float]) -> str:
    return " ".join(f"{v / 1000:.1f}k" for v in values)
