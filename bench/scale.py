"""1,000 concurrent I/O-bound executions on one node (issue 7, item 6).

Sleeping flows (`bench.flows:sleepy`, a thread each waiting on its cancel event) stand in
for LLM-bound crews that mostly wait. They share executor actors (250 per actor by
default), so 1,000 of them need four OS processes, not a thousand. Measured:
- all N RUNNING at once (per `GetNodeInfo`), and the PSS per execution (node + executors,
  minus the idle node), against the target of ≤ 10 MB;
- launch-to-finish throughput: N / (first launch → last terminal event at its watcher),
  each execution sleeping `SLEEP` seconds, beside the raw baseline of the same number of
  concurrent `asyncio.sleep(SLEEP)` calls on one bare async Ray actor, measured in the run.
"""

from __future__ import annotations

import asyncio
import os
import time

import ray

from bench.memory import measure, wait_running
from bench.node import running_node
from bench.raw_ray import RemoteSleeper
from bench.report import Figure, Result, Table, fmt
from kodosumid.config import PoolConfig

NAME = "scale"
SLEEP = 5.0
TARGET_MIB = 10.0


async def raw_baseline(count: int) -> float:
    """Seconds for `count` concurrent sleeps on one bare async Ray actor."""
    actor = RemoteSleeper.remote()
    await actor.ready.remote()
    try:
        started = time.perf_counter()
        await asyncio.gather(*(actor.sleep.remote(SLEEP) for _ in range(count)))
        return time.perf_counter() - started
    finally:
        ray.kill(actor, no_restart=True)


async def benchmark(quick: bool) -> Result:
    count = 200 if quick else 1000
    pool = PoolConfig(
        shared_executors=count // 250 or 1,
        warm_executors=0,
        max_executions_per_executor=250,
        preload_modules=(),
    )
    async with running_node(NAME, pool) as node:
        await node.wait_terminal(await node.launch("sleepy", {"seconds": 0}))
        idle_node, idle_exec = await measure(node)
        idle = idle_node + idle_exec

        started = time.perf_counter()
        ids = await asyncio.gather(
            *(node.launch("sleepy", {"seconds": SLEEP}) for _ in range(count))
        )
        launched = time.perf_counter() - started
        watchers = [asyncio.ensure_future(node.wait_terminal(i)) for i in ids]
        await wait_running(node, count, timeout=SLEEP * 4)
        all_running = (await node.load()).running_executions
        node_mib, exec_mib = await measure(node)
        statuses = await asyncio.gather(*watchers)
        finished = time.perf_counter() - started
        executors = len(node.app.pool.shared if node.app.pool else [])
        pid = os.getpid()
    baseline = await raw_baseline(count)
    per_exec = (node_mib + exec_mib - idle) / count
    succeeded = sum(1 for s in statuses if s == 5)
    table = Table(
        f"{count} concurrent sleeping executions ({SLEEP:g} s each), node pid {pid}",
        ["what", "value"],
        [
            ["launches accepted", f"{count} in {launched:.2f} s ({count / launched:.0f}/s)"],
            ["running at once (GetNodeInfo)", str(all_running)],
            ["shared executors used", str(executors)],
            ["PSS idle (node + executors)", f"{fmt(idle)} MiB"],
            ["PSS with all running", f"{fmt(node_mib + exec_mib)} MiB"],
            ["PSS per execution", f"{per_exec * 1024:.0f} KiB"],
            ["launch → last finish", f"{finished:.2f} s ({count / finished:.0f} executions/s)"],
            ["raw Ray: same sleeps on one async actor", f"{baseline:.2f} s"],
            ["succeeded", f"{succeeded} of {count}"],
        ],
    )
    return Result(
        [table],
        [
            Figure(
                NAME,
                f"PSS per execution ({count} running)",
                per_exec,
                "MiB",
                target=f"≤ {TARGET_MIB:g} MB, all {count} running",
                met=per_exec <= TARGET_MIB and all_running >= count,
            ),
            Figure(
                NAME,
                f"launch→finish, {count} x sleep {SLEEP:g} s",
                count / finished,
                "exec/s",
                "raw Ray async actor, same sleeps",
                count / baseline,
            ),
        ],
    )


if __name__ == "__main__":
    import sys

    from bench import hermetic

    hermetic.enter()
    result = asyncio.run(benchmark("--quick" in sys.argv))
    for t in result.tables:
        print(t.render(), end="\n\n")
