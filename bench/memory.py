"""Memory per running execution: PSS of the node and its executors, minus the idle node.

A node with one shared executor (no warm spare, room for 250 executions, the default
`preload_modules`, i.e. CrewAI imported into every executor) runs
`bench.flows:sleepy`: each execution is a thread in the executor that waits on its cancel
event, i.e. a running execution that does nothing. Measured: PSS of this process (the node,
with its embedded Ray driver and the benchmark's client) plus the executor actor's worker
process (its pid from the actor's `ready()`), idle and then with 50 and 200 executions
RUNNING at once (per `GetNodeInfo`), nobody watching. Per execution = (with N - idle) / N.
Ray's own daemons (GCS, raylet, ...) do not change with the number of executions and are not
counted. Baseline (same run): the PSS of the worker process of a bare Ray actor, against
which the idle executor's own footprint is set. No target: the figures are for capacity
planning.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from dataclasses import replace

import ray

from bench.node import BenchNode, running_node
from bench.procmem import pss_kib, total_pss_mib
from bench.raw_ray import RemoteEcho
from bench.report import Figure, Result, Table, fmt
from kodosumi.v1 import flow_pb2
from kodosumid.config import PoolConfig

NAME = "memory"
WARM_UP = 20
SLEEP_SECONDS = 600.0  # longer than the benchmark: ended by cancellation


async def wait_running(
    node: BenchNode, count: int, *, below: bool = False, timeout: float = 120
) -> None:
    """Until `count` executions run (or, `below`: at most `count` are pending or running)."""
    deadline = time.monotonic() + timeout
    while True:
        load = await node.load()
        active = load.running_executions + load.pending_executions
        if (active <= count) if below else (load.running_executions >= count):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions did not reach {count} within {timeout}s")
        await asyncio.sleep(0.1)


async def measure(node: BenchNode) -> tuple[float, float]:
    """(node MiB, executors MiB) after letting the processes settle."""
    gc.collect()
    await asyncio.sleep(1.0)
    pids = await node.executor_pids()
    return pss_kib(os.getpid()) / 1024, total_pss_mib(pids)


async def bare_worker_mib() -> float:
    """PSS of the worker process of the smallest Ray actor (the baseline for an executor)."""
    actor = RemoteEcho.remote()
    pid = await actor.ready.remote()
    gc.collect()
    await asyncio.sleep(1.0)
    try:
        return pss_kib(pid) / 1024
    finally:
        ray.kill(actor, no_restart=True)


async def benchmark(quick: bool) -> Result:
    steps = (50,) if quick else (50, 200)
    pool = PoolConfig(shared_executors=1, warm_executors=0, max_executions_per_executor=250)
    rows: list[list[str]] = []
    figures: list[Figure] = []
    async with running_node("memory-plain", replace(pool, preload_modules=())) as node:
        await node.wait_terminal(await node.launch("sleepy", {"seconds": 0}))
        plain = (await measure(node))[1]
    rows.append(["idle executor, preload_modules=()", "-", fmt(plain), "-", "-", "-"])
    async with running_node("memory", pool) as node:
        # Warm-up: the flow module's import and the node's one-off allocations (caches,
        # first-use imports) are not costs of a running execution.
        for _ in range(WARM_UP):
            await node.wait_terminal(await node.launch("sleepy", {"seconds": 0}))
        idle_node, idle_exec = await measure(node)
        idle = idle_node + idle_exec
        bare = await bare_worker_mib()
        rows.insert(0, ["baseline: bare Ray actor worker", "-", fmt(bare), "-", "-", "-"])
        figures.append(
            Figure(NAME, "idle executor PSS", idle_exec, "MiB", "bare Ray actor worker", bare)
        )
        rows.append(
            [
                "idle (default pool: preloads CrewAI)",
                fmt(idle_node),
                fmt(idle_exec),
                fmt(idle),
                "-",
                "-",
            ]
        )
        running: list[str] = []
        previous: tuple[int, float] | None = None
        for count in steps:
            while len(running) < count:
                running.append(await node.launch("sleepy", {"seconds": SLEEP_SECONDS}))
            await wait_running(node, count)
            node_mib, exec_mib = await measure(node)
            total = node_mib + exec_mib
            per_exec_kib = (total - idle) * 1024 / count
            if previous is not None:
                marginal = (total - previous[1]) * 1024 / (count - previous[0])
                label = f"PSS per added execution ({previous[0]}→{count})"
                figures.append(Figure(NAME, label, marginal, "KiB"))
            previous = (count, total)
            rows.append(
                [
                    f"{count} running",
                    fmt(node_mib),
                    fmt(exec_mib),
                    fmt(total),
                    fmt(total - idle),
                    fmt(per_exec_kib),
                ]
            )
            figures.append(
                Figure(NAME, f"PSS per running execution ({count})", per_exec_kib, "KiB")
            )
        await asyncio.gather(
            *(
                node.flows.CancelExecution(
                    flow_pb2.CancelExecutionRequest(execution_id=eid, reason="bench over"),
                    timeout=30,
                )
                for eid in running
            )
        )
        # Wait for the node, not on watch streams: see "stuck watcher" in docs/performance.md.
        await wait_running(node, 0, below=True)
    table = Table(
        "PSS of node + executor with N sleeping executions (shared isolation), MiB",
        ["state", "node", "executor", "total", "minus idle", "KiB / execution"],
        rows,
        ["node = this process (node, Ray driver, bench client); executor = its Ray worker"],
    )
    return Result([table], figures)
