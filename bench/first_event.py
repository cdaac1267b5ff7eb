"""Launch → first event latency, with and without a warm executor pool, beside raw Ray.

"First event" is the first event the engine emits (the STARTING status, seq 3) arriving at a
client that watches from `after_seq=2`: timed from the `LaunchExecution` call, so it covers
the launch RPC, the store write, picking or creating an executor, `start` on the actor, the
drain back, the SQLite write, the fan-out and the watch stream. Each launch runs
`bench.flows:noop` to its end before the next one starts.

Modes:
- warm, process-isolated: the flow takes a warm spare (`warm_executors=1`); the next launch
  waits until the pool has refilled its spare, so every launch finds one.
- warm, shared: the flow runs in the already running shared executor.
- no pool: `warm_executors=0`, so each process-isolated launch creates its actor.
These pools set `preload_modules=()` (plain flows need no CrewAI), so a spare refills in
about a second; a few launches on a pool with the default preload (CrewAI imported into
every new executor before its first start) show what that costs without a warm spare.
Baselines (raw Ray, same run): create an actor and call it; call an existing actor.
Launches of the modes on one node alternate. Target: warm p50 <= 100 ms.
"""

from __future__ import annotations

import time
from dataclasses import replace

import ray

from bench.node import BenchNode, running_node, terminal_status
from bench.raw_ray import RemoteEcho
from bench.report import Figure, Result, Table, fmt, percentile
from kodosumi.v1 import event_pb2
from kodosumid.config import PoolConfig

NAME = "first-event"
TARGET_MS = 100.0
WARM_ISOLATED = "warm, process-isolated (spare)"
WARM_SHARED = "warm, shared executor"
NO_POOL = "no pool, new actor per launch"
NO_POOL_PRELOAD = "no pool, default preload (CrewAI)"


async def first_event(node: BenchNode, flow: str) -> tuple[float, float]:
    """(launch accepted, first event) in ms after the launch call; waits for the end."""
    start = time.perf_counter()
    execution_id = await node.launch(flow)
    accepted = time.perf_counter()
    first = 0.0
    call = node.watch(execution_id, after_seq=2)
    async for response in call:
        if not first and response.events:
            first = time.perf_counter()
            event = response.events[0]
            if event.seq != 3 or event.status_changed.status != event_pb2.EXECUTION_STATUS_STARTING:
                raise RuntimeError(f"unexpected first event: {event}")
        if terminal_status(response):
            call.cancel()
            break
    if not first:
        raise RuntimeError(f"no event after seq 2 for {execution_id}")
    return (accepted - start) * 1000, (first - start) * 1000


async def raw_create_and_call() -> float:
    start = time.perf_counter()
    actor = RemoteEcho.remote()
    await actor.ready.remote()
    elapsed = (time.perf_counter() - start) * 1000
    ray.kill(actor, no_restart=True)
    return elapsed


async def raw_call(actor: object) -> float:
    start = time.perf_counter()
    await actor.ready.remote()  # type: ignore[attr-defined]
    return (time.perf_counter() - start) * 1000


async def benchmark(quick: bool) -> Result:
    launches = 20 if quick else 50
    preloading = 3 if quick else 5
    accepted: dict[str, list[float]] = {}
    first: dict[str, list[float]] = {}

    def record(mode: str, times: tuple[float, float]) -> None:
        accepted.setdefault(mode, []).append(times[0])
        first.setdefault(mode, []).append(times[1])

    # Plain flows need no CrewAI: without the default preload a spare refills in ~1 s, not ~3.
    plain = PoolConfig(shared_executors=1, warm_executors=1, preload_modules=())
    raw_create: list[float] = []
    raw_calls: list[float] = []
    async with running_node("warm", plain) as node:
        existing = RemoteEcho.remote()
        await existing.ready.remote()
        await first_event(node, "noop")  # warm-up: first import of the flow module
        await node.spares_ready(1)
        for _ in range(launches):
            record(WARM_ISOLATED, await first_event(node, "noop-isolated"))
            # The refill starts a worker process: let it finish before the next launch.
            await node.spares_ready(1)
            record(WARM_SHARED, await first_event(node, "noop"))
            raw_calls.append(await raw_call(existing))
        ray.kill(existing, no_restart=True)

    async with running_node("cold", replace(plain, warm_executors=0)) as node:
        await raw_create_and_call()  # warm-up
        for _ in range(launches):
            record(NO_POOL, await first_event(node, "noop-isolated"))
            raw_create.append(await raw_create_and_call())

    # The node's default pool preloads CrewAI into every executor before its first start.
    async with running_node("cold-default", PoolConfig(warm_executors=0)) as node:
        for _ in range(preloading):
            record(NO_POOL_PRELOAD, await first_event(node, "noop-isolated"))

    rows = [_row(mode, values, accepted[mode]) for mode, values in first.items()]
    rows.append(_row("raw Ray: create actor + call", raw_create))
    rows.append(_row("raw Ray: call existing actor", raw_calls))
    table = Table(
        "launch → first event (STARTING, seq 3) at the watcher, ms",
        ["mode", "launches", "p50", "p95", "max", "launch RPC p50"],
        rows,
        [
            f"target: warm p50 <= {TARGET_MS:g} ms",
            "pools without preload_modules except the last node row (the default preload)",
        ],
    )
    raw_create_p50 = percentile(raw_create, 50)
    raw_call_p50 = percentile(raw_calls, 50)
    figures = []
    for mode in (WARM_ISOLATED, WARM_SHARED, NO_POOL):
        p50 = percentile(first[mode], 50)
        warm = mode != NO_POOL
        shared = mode == WARM_SHARED
        figures.append(
            Figure(
                NAME,
                f"p50 {mode}",
                p50,
                "ms",
                "raw Ray call" if shared else "raw Ray create+call",
                raw_call_p50 if shared else raw_create_p50,
                f"<= {TARGET_MS:g} ms" if warm else "",
                p50 <= TARGET_MS if warm else None,
            )
        )
    return Result([table], figures)


def _row(mode: str, values: list[float], launch: list[float] | None = None) -> list[str]:
    return [
        mode,
        str(len(values)),
        fmt(percentile(values, 50)),
        fmt(percentile(values, 95)),
        fmt(max(values)),
        fmt(percentile(launch, 50)) if launch else "-",
    ]
