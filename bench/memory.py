"""Memory per running execution: PSS of the node and its executor, minus the idle node.

A node with one shared executor (no warm spare, room for 250 executions, the default
`preload_modules`, i.e. CrewAI imported into every executor) runs `bench.flows:sleepy`:
each execution is a thread in the executor that waits on its cancel event, i.e. a running
execution that does nothing. Measured: PSS of this process (the node, with its embedded
Ray driver and the benchmark's client) plus the executor actor's worker process (its pid
from the actor's `ready()`), idle after 20 short executions, then with 50 and 200
executions RUNNING at once (per `GetNodeInfo`), nobody watching. Per execution =
(with N - idle) / N, from the whole PSS and from its anonymous part (`Pss_Anon`), which
other processes on the machine cannot move (see `bench.procmem`). Ray's own daemons
(GCS, raylet, ...) do not change with the number of executions and are not counted.

Baselines (same run): the PSS of the worker process of a bare Ray actor, against which the
idle executor's footprint is set, and an idle executor of a pool without preload.
No target: the figures are for capacity planning.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import replace

import ray

from bench.node import BenchNode, running_node
from bench.procmem import Pss, pss, settle_this_process, total_pss
from bench.raw_ray import RemoteEcho
from bench.report import Figure, Result, Table, fmt
from kodosumi.v1 import flow_pb2
from kodosumid.config import PoolConfig

NAME = "memory"
WARM_UP = 20
READINGS = 3
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
    """(node MiB, executors MiB) of PSS, after the processes settle (used by bench.scale)."""
    node_pss, exec_pss = await measure_pss(node)
    return node_pss.total, exec_pss.total


async def measure_pss(node: BenchNode) -> tuple[Pss, Pss]:
    """(node, executors): medians of a few readings after the processes settle."""
    pids = await node.executor_pids()
    readings: list[tuple[Pss, Pss]] = []
    for _ in range(READINGS):
        await asyncio.sleep(0.3)
        settle_this_process()
        readings.append((pss(os.getpid()), total_pss(pids)))
    return _median([r[0] for r in readings]), _median([r[1] for r in readings])


def _median(values: list[Pss]) -> Pss:
    return Pss(
        statistics.median(v.total for v in values), statistics.median(v.anon for v in values)
    )


async def bare_worker() -> Pss:
    """PSS of the worker process of the smallest Ray actor (the baseline for an executor)."""
    actor = RemoteEcho.remote()
    pid = await actor.ready.remote()
    await asyncio.sleep(1.0)
    try:
        return pss(pid)
    finally:
        ray.kill(actor, no_restart=True)


async def benchmark(quick: bool) -> Result:
    steps = (50,) if quick else (50, 200)
    pool = PoolConfig(shared_executors=1, warm_executors=0, max_executions_per_executor=250)
    rows: list[list[str]] = []
    figures: list[Figure] = []

    def row(state: str, node: Pss | None, executor: Pss, delta: Pss | None, count: int) -> None:
        total = executor + node if node is not None else None
        rows.append(
            [
                state,
                fmt(node.total) if node else "-",
                fmt(executor.total),
                fmt(total.total) if total else "-",
                fmt(delta.total) if delta else "-",
                fmt(delta.anon) if delta else "-",
                fmt(delta.total * 1024 / count) if delta else "-",
                fmt(delta.anon * 1024 / count) if delta else "-",
            ]
        )

    bare = await bare_worker()
    row("baseline: bare Ray actor worker", None, bare, None, 1)
    async with running_node("memory-plain", replace(pool, preload_modules=())) as node:
        await node.wait_terminal(await node.launch("sleepy", {"seconds": 0}))
        row("idle executor, preload_modules=()", None, (await measure_pss(node))[1], None, 1)
    async with running_node("memory", pool) as node:
        # Warm-up: the flow module's import and the node's one-off allocations (caches,
        # first-use imports) are not costs of a running execution.
        for _ in range(WARM_UP):
            await node.wait_terminal(await node.launch("sleepy", {"seconds": 0}))
        idle_node, idle_exec = await measure_pss(node)
        idle = idle_node + idle_exec
        row("idle (default pool: preloads CrewAI)", idle_node, idle_exec, None, 1)
        figures.append(
            Figure(NAME, "idle executor PSS", idle_exec.total, "MiB", "bare Ray actor", bare.total)
        )
        running: list[str] = []
        for count in steps:
            while len(running) < count:
                running.append(await node.launch("sleepy", {"seconds": SLEEP_SECONDS}))
            await wait_running(node, count)
            node_pss, exec_pss = await measure_pss(node)
            delta = node_pss + exec_pss - idle
            row(f"{count} running", node_pss, exec_pss, delta, count)
            figures.append(
                Figure(NAME, f"per execution ({count}), PSS", delta.total * 1024 / count, "KiB")
            )
            figures.append(
                Figure(NAME, f"per execution ({count}), PSS_Anon", delta.anon * 1024 / count, "KiB")
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
        [
            "state",
            "node",
            "executor",
            "total",
            "Δ idle",
            "Δ anon",
            "KiB/exec",
            "KiB/exec anon",
        ],
        rows,
        [
            "node = this process (node, Ray driver, bench client); executor = its Ray worker",
            "Δ anon = change of Pss_Anon, which other processes' mappings cannot move",
        ],
    )
    return Result([table], figures)
