"""Soak: 10,000 short executions through one node (issue 7, item 7).

Launched in waves of `CONCURRENCY`, each followed to its terminal event. After a warm-up
the node process's RSS and open file descriptors must stay flat (within 10 %), no executor
actor may be leaked (the node's named actors at the end equal those at the start), and the
store grows only by the events kept: with a retention sweep deleting finished executions
as it goes, the database file stays flat too (SQLite reuses the freed pages).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path

import ray

from bench.node import running_node
from bench.report import Figure, Result, Table
from kodosumid.config import PoolConfig

NAME = "soak"
CONCURRENCY = 50
SAMPLES = 10


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def store_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("events.sqlite*"))


def executor_names(prefix: str) -> set[str]:
    return {n for n in ray.util.list_named_actors() if str(n).startswith(prefix)}


async def benchmark(quick: bool) -> Result:
    total = 1000 if quick else 10_000
    pool = PoolConfig(shared_executors=1, warm_executors=1, preload_modules=())
    rows: list[list[str]] = []
    async with running_node(NAME, pool) as node:
        assert node.app.pool is not None and node.app.executions is not None
        prefix = node.app.pool.prefix
        actors_before = executor_names(prefix)
        state_dir = node.app.config.state_dir
        every = total // SAMPLES
        samples: list[tuple[int, float, int, int]] = []
        done = 0
        started = time.perf_counter()
        while done < total:
            wave = [node.launch("noop") for _ in range(min(CONCURRENCY, total - done))]
            ids = await asyncio.gather(*wave)
            await asyncio.gather(*(node.wait_terminal(i) for i in ids))
            done += len(ids)
            if done % every == 0:
                # Retention as an operator would run it: everything finished is expired.
                await node.app.executions.expire(0)
                samples.append((done, rss_mib(), open_fds(), store_bytes(state_dir)))
                rows.append(
                    [
                        str(done),
                        f"{samples[-1][1]:.0f}",
                        str(samples[-1][2]),
                        f"{samples[-1][3] / 1024:.0f}",
                    ]
                )
        elapsed = time.perf_counter() - started
        actors_after = executor_names(prefix)
    after_warmup = samples[1:] if len(samples) > 2 else samples
    rss = [s[1] for s in after_warmup]
    fds = [s[2] for s in after_warmup]
    size = [s[3] for s in after_warmup]

    def spread(values: list[float] | list[int]) -> float:
        return (max(values) - min(values)) / max(min(values), 1)

    leaked = sorted(actors_after - actors_before)
    table = Table(
        f"soak: {total} short executions, {CONCURRENCY} at a time, {total / elapsed:.0f}/s",
        ["executions done", "node RSS MiB", "open fds", "store KiB"],
        rows,
        notes=[
            f"after warm-up: RSS spread {spread(rss):.1%}, fd spread {spread(fds):.1%}, "
            f"store spread {spread(size):.1%}",
            f"executor actors before {len(actors_before)}, after {len(actors_after)}; "
            f"leaked: {leaked or 'none'}",
        ],
        text_columns=0,
    )
    flat = spread(rss) <= 0.10 and spread(fds) <= 0.10
    return Result(
        [table],
        [
            Figure(
                NAME,
                "node RSS spread after warm-up",
                spread(rss) * 100,
                "%",
                target="≤ 10 %",
                met=spread(rss) <= 0.10,
            ),
            Figure(
                NAME,
                "open fd spread after warm-up",
                spread(fds) * 100,
                "%",
                target="≤ 10 %",
                met=spread(fds) <= 0.10,
            ),
            Figure(
                NAME,
                "leaked executor actors",
                float(len(leaked)),
                "",
                target="0",
                met=not leaked and flat,
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
