"""A2A streaming events/s beside our own WatchExecution, on the same flow and node (issue 13).

Both rounds run `bench.flows:emit_many` (N progress events of about 100 bytes) on one
in-process node. Ours: `LaunchExecution` then `WatchExecution` (batched responses), timed
to the terminal event (`bench.events.node_round`). A2A: `SendStreamingMessage` with the
a2a-sdk client (ClientFactory, gRPC transport, the same mTLS), timed to the end of the
stream. The A2A stream tells each run of progress events that arrive together by its last
(docs/a2a.md); the figure is the execution's events per second through the A2A path, and
the result artifact proves every one of them was emitted.
Rounds alternate after a warm-up of each; medians. Target: A2A >= 0.8 x WatchExecution.
"""

from __future__ import annotations

import statistics
import time
import uuid

from a2a.client import Client
from a2a.types import a2a_pb2 as a2a

from bench.events import MESSAGE_SIZE, node_round
from bench.node import running_node
from bench.report import Figure, Result, Table, fmt
from kodoclient.a2a import a2a_client
from kodoclient.config import ConnectConfig
from kodosumi.jsonvalue import python_to_value, value_to_python
from kodosumid.config import PoolConfig

NAME = "a2a"
TARGET_RATIO = 0.8


async def a2a_round(client: Client, count: int) -> float:
    message = a2a.Message(message_id=uuid.uuid4().hex, role=a2a.ROLE_USER)
    python_to_value({"count": count, "size": MESSAGE_SIZE}, message.parts.add().data)
    final = a2a.TASK_STATE_UNSPECIFIED
    emitted = None
    start = time.perf_counter()
    async for response in client.send_message(a2a.SendMessageRequest(message=message)):
        if response.HasField("status_update"):
            final = response.status_update.status.state
        elif response.HasField("artifact_update"):
            for part in response.artifact_update.artifact.parts:
                if part.HasField("data"):
                    emitted = value_to_python(part.data)
    elapsed = time.perf_counter() - start
    if final != a2a.TASK_STATE_COMPLETED or emitted != {"emitted": count}:
        raise RuntimeError(f"A2A stream: result {emitted}, last state {final}")
    return count / elapsed


async def benchmark(quick: bool) -> Result:
    count = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    ours: list[float] = []
    theirs: list[float] = []
    pool = PoolConfig(shared_executors=1, warm_executors=0)
    async with running_node("a2a", pool) as node:
        assert node.app.client_files is not None
        # One client (one channel) for all rounds, as the watch rounds keep theirs.
        config = ConnectConfig(target=node.app.address, tls=node.app.client_files.read())
        client = a2a_client(config, tenant="emit-many")
        try:
            await node_round(node, 500)  # warm-up: the flow's import, the handshakes
            await a2a_round(client, 500)
            for _ in range(rounds):
                ours.append((await node_round(node, count))[0])
                theirs.append(await a2a_round(client, count))
        finally:
            await client.close()
    watch, a2a_rate = statistics.median(ours), statistics.median(theirs)
    ratio = a2a_rate / watch
    table = Table(
        f"events/s of one execution (emit-many, {count:,} progress events), "
        f"median of {rounds} round(s)",
        ["path", "events/s", "rounds", "ratio"],
        [
            ["WatchExecution (batched)", fmt(watch), _rounds(ours), "1.00"],
            ["A2A SendStreamingMessage", fmt(a2a_rate), _rounds(theirs), f"{ratio:.2f}"],
        ],
        [f"target: A2A >= {TARGET_RATIO:g} x WatchExecution"],
    )
    figure = Figure(
        NAME,
        "A2A streaming events/s",
        a2a_rate,
        "ev/s",
        "WatchExecution",
        watch,
        f">= {TARGET_RATIO:g}x watch",
        ratio >= TARGET_RATIO,
    )
    return Result([table], [figure])


def _rounds(values: list[float]) -> str:
    return " ".join(f"{v / 1000:.1f}k" for v in values)
