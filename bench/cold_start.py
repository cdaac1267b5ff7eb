"""Cold start: `kodosumid` as a subprocess until it accepts its first launch, beside `ray.init`.

Each round starts `python -m kodosumid --config bench/cold.toml --state-dir <new dir>
--listen 127.0.0.1:0` (a fresh state dir: the dev CA is created too), polls
`<state>/node.json` for the address, and calls `LaunchExecution` with the dev client
certificate and a deadline. Reported: node.json written, launch accepted (the figure),
first event (STARTING, which also waits for the pool's executors), and how long SIGTERM
takes to stop it. Every step includes the embedded Ray.

Baseline (same run, rounds alternate): `python -c "import ray; ray.init(...)"` with the
arguments the node uses, until it prints after `ray.init` returned.
Target: launch accepted <= 5 s.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import hermetic
from bench.report import Figure, Result, Table, fmt
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import dev_client_files
from kodosumi.v1 import flow_pb2, flow_pb2_grpc

NAME = "cold-start"
REPO = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).with_name("cold.toml")
TARGET_SECONDS = 5.0
DEADLINE_SECONDS = 60.0

RAY_INIT = """
import ray, time
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
         object_store_memory=200 * 1024 * 1024, namespace="kodosumi",
         _node_ip_address="127.0.0.1", configure_logging=False)
print("ready", flush=True)
"""


@dataclass(frozen=True, slots=True)
class NodeTimes:
    info_file: float
    accepted: float
    first_event: float
    stop: float


async def node_round() -> NodeTimes:
    state = hermetic.scratch("cold-")
    log = (state.parent / f"{state.name}.log").open("wb")
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kodosumid",
        "--config",
        str(CONFIG),
        "--state-dir",
        str(state),
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "WARNING",
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    try:
        info = state / "node.json"
        deadline = start + DEADLINE_SECONDS
        while not info.is_file():
            if process.returncode is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"kodosumid did not start; see {log.name}")
            await asyncio.sleep(0.005)
        info_time = time.perf_counter()
        address = json.loads(info.read_text())["address"]
        channel = open_channel(
            address, dev_client_files(state).read(), expect=ServerExpectation.node()
        )
        try:
            flows = flow_pb2_grpc.FlowServiceStub(channel)
            response = await flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="noop", inputs=dict_to_struct({})),
                timeout=deadline - time.perf_counter(),
            )
            accepted = time.perf_counter()
            request = flow_pb2.WatchExecutionRequest(
                execution_id=response.execution.execution_id, after_seq=2
            )
            call = flows.WatchExecution(request, timeout=deadline - time.perf_counter())
            async for _ in call:
                break
            call.cancel()
            first = time.perf_counter()
        finally:
            await channel.close()
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        stopped = time.perf_counter()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
    return NodeTimes(info_time - start, accepted - start, first - start, stopped - stopping)


async def ray_init_round() -> float:
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RAY_INIT,
        cwd=hermetic.scratch("ray-init-"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_SECONDS)
    ready = time.perf_counter()
    await asyncio.wait_for(process.wait(), 30)
    if line.strip() != b"ready":
        raise RuntimeError("ray.init baseline failed")
    return ready - start


async def benchmark(quick: bool) -> Result:
    rounds = 1 if quick else 3
    nodes: list[NodeTimes] = []
    inits: list[float] = []
    for _ in range(rounds):
        inits.append(await ray_init_round())
        nodes.append(await node_round())
    ray_init = statistics.median(inits)
    accepted = statistics.median(n.accepted for n in nodes)

    def row(what: str, values: list[float]) -> list[str]:
        return [what, fmt(statistics.median(values)), " ".join(f"{v:.2f}" for v in values)]

    table = Table(
        f"cold start, seconds from process start, median of {rounds} round(s)",
        ["step", "median s", "rounds"],
        [
            row("baseline: python -c 'import ray; ray.init()'", inits),
            row("kodosumid: node.json written (serving)", [n.info_file for n in nodes]),
            row("kodosumid: first launch accepted", [n.accepted for n in nodes]),
            row("kodosumid: first event (executor started)", [n.first_event for n in nodes]),
            row("kodosumid: SIGTERM → exit", [n.stop for n in nodes]),
        ],
        [f"target: first launch accepted <= {TARGET_SECONDS:g} s (embedded Ray included)"],
    )
    figure = Figure(
        NAME,
        "start → first launch accepted",
        accepted,
        "s",
        "ray.init",
        ray_init,
        f"<= {TARGET_SECONDS:g} s",
        accepted <= TARGET_SECONDS,
    )
    return Result([table], [figure])
