"""Executor start: how long a new executor takes until it can run a launch (process up,
located, preload imported), with the CrewAI preload and without it (issue 10).

A node whose catalog has no CrewAI flow now starts its executors without the CrewAI
preload (`kodosumid/executors/preload.py`); before, every executor imported CrewAI. Both
are measured here on the pool itself (`RayExecutorPool`, one executor at a time, killed
after each round), beside the raw baseline of the same run: creating the smallest Ray
actor and calling it (`bench/raw_ray.py`). Rounds alternate between the three modes.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import ray

from bench.node import ensure_ray
from bench.raw_ray import RemoteEcho
from bench.report import Figure, Result, Table, fmt
from kodosumid.config import PoolConfig
from kodosumid.executors.port import SHARED
from kodosumid.executors.preload import CREW_PRELOAD, effective_preload
from kodosumid.executors.ray_pool import RayExecutorPool

NAME = "executor-start"
PLAIN_FLOWS = ("bench.flows:noop",)


async def _pool_round(pool: RayExecutorPool) -> float:
    started = time.perf_counter()
    executor = await pool._new(SHARED)
    elapsed = time.perf_counter() - started
    pool.kill(executor)
    return elapsed


async def _raw_round() -> float:
    started = time.perf_counter()
    actor = RemoteEcho.remote()
    await actor.ready.remote()
    elapsed = time.perf_counter() - started
    ray.kill(actor, no_restart=True)
    return elapsed


async def benchmark(quick: bool) -> Result:
    ensure_ray()
    rounds = 3 if quick else 6
    default = PoolConfig().preload_modules
    plain = effective_preload(default, PLAIN_FLOWS, ())
    assert CREW_PRELOAD in default and CREW_PRELOAD not in plain
    pools = {
        "before: every executor preloads CrewAI": RayExecutorPool(
            PoolConfig(preload_modules=default), "bench-crew", detached=False
        ),
        "after: plain-flow catalog, no CrewAI preload": RayExecutorPool(
            PoolConfig(preload_modules=plain), "bench-plain", detached=False
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in pools}
    raw: list[float] = []
    for _ in range(rounds):
        for name, pool in pools.items():
            times[name].append(await _pool_round(pool))
            await asyncio.sleep(0.5)  # let the killed worker exit before the next start
        raw.append(await _raw_round())
        await asyncio.sleep(0.5)
    for pool in pools.values():
        await pool.close()
    baseline = statistics.median(raw)
    rows = [
        [name, str(len(values)), fmt(statistics.median(values) * 1000), fmt(max(values) * 1000)]
        for name, values in times.items()
    ]
    rows.append(
        [
            "baseline: raw Ray, create an actor + call it",
            str(len(raw)),
            fmt(baseline * 1000),
            fmt(max(raw) * 1000),
        ]
    )
    table = Table(
        "Executor start (new executor until it can run a launch)",
        ["mode", "rounds", "median ms", "max ms"],
        rows,
        notes=[f"{rounds} rounds, modes alternating; each executor killed after its round"],
    )
    before, after = (statistics.median(v) for v in times.values())
    return Result(
        tables=[table],
        figures=[
            Figure(
                NAME,
                "new executor, CrewAI preload (before)",
                before * 1000,
                "ms",
                "raw Ray create+call",
                baseline * 1000,
            ),
            Figure(
                NAME,
                "new executor, plain catalog (after)",
                after * 1000,
                "ms",
                "raw Ray create+call",
                baseline * 1000,
            ),
        ],
    )
