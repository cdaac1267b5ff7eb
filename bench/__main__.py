"""Run the benchmarks: one table per benchmark, then a summary with ratios and targets.

    .venv/bin/python -m bench                 # issue 2's five and A2A's (what `make bench` runs)
    .venv/bin/python -m bench --only events   # one (repeatable; also scale, soak, dead-node)
    .venv/bin/python -m bench --quick         # smaller counts, fewer rounds
    .venv/bin/python -m bench --json out.json # also write the figures as JSON

Order matters: the cold start runs first, while this process has no Ray of its own; the
in-process node benchmarks share one embedded Ray (memory first, before the others leave
garbage in this process); the registry runs after Ray has stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bench import hermetic

if TYPE_CHECKING:  # imported at run time only after the hermetic environment is set
    from bench.report import Figure

# name -> module holding `async def benchmark(quick: bool) -> Result`; run in this order.
BENCHMARKS = {
    "cold-start": "bench.cold_start",
    "memory": "bench.memory",
    "events": "bench.events",
    "first-event": "bench.first_event",
    "a2a": "bench.a2a_stream",
    "registry": "bench.registry_heartbeats",
    "fanout": "bench.fanout",
    "unread-watchers": "bench.unread_watchers",
    "files": "bench.files",
    "gateway": "bench.gateway_http",
}
# Longer benchmarks of other issues: only with `--only NAME`, never in the default run.
ON_REQUEST = {
    "scale": "bench.scale",
    "soak": "bench.soak",
    "dead-node": "bench.dead_node_detection",
    "store-rows": "bench.store_rows",
    "executor-start": "bench.executor_start",
    "untraced": "bench.untraced_events",
}
MODULES = {**BENCHMARKS, **ON_REQUEST}
# Benchmarks that start nodes in this process (they share one embedded Ray); the others
# measure other processes and run with no idle Ray beside them.
USES_RAY = {
    "memory",
    "events",
    "first-event",
    "scale",
    "soak",
    "a2a",
    "store-rows",
    "executor-start",
    "gateway",
}


def machine() -> dict[str, str]:
    import grpc
    import ray

    with open("/proc/meminfo") as f:
        total_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "memory": f"{total_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "ray": ray.__version__,
        "grpcio": grpc.__version__,
        "kernel": platform.release(),
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "tree": source_tree(),
    }


def source_tree() -> str:
    """The commit measured, and how many files differ from it (read-only git calls)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        git = ["git", "--no-optional-locks"]  # never touch the index others commit from
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain"], check=False, cwd=repo, capture_output=True, text=True
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'} + {len(changed)} changed files" if changed else commit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=list(MODULES),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}; "
        f"on request only: {', '.join(ON_REQUEST)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, fewer rounds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


async def run(names: list[str], quick: bool) -> list[Figure]:
    from bench.node import shutdown_ray
    from bench.report import Result, summary

    results: dict[str, Result] = {}
    for name in names:
        if name not in USES_RAY:
            await asyncio.to_thread(shutdown_ray)
        module = importlib.import_module(MODULES[name])
        bench: Callable[[bool], Awaitable[Result]] = module.benchmark
        started = time.perf_counter()
        print(f"\n== {name} ...", flush=True)
        result = await bench(quick)
        print(f"   ({time.perf_counter() - started:.0f} s)\n", flush=True)
        for table in result.tables:
            print(table.render(), end="\n\n", flush=True)
        results[name] = result
    await asyncio.to_thread(shutdown_ray)
    figures = [f for r in results.values() for f in r.figures]
    print(summary(figures).render())
    return figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    hermetic.enter()  # before anything imports ray
    names = [n for n in MODULES if n in args.only] if args.only else list(BENCHMARKS)
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"mode: {'quick' if args.quick else 'full'}; benchmarks: {', '.join(names)}")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy (load average above half the cores): noisy figures")
    started = time.perf_counter()
    try:
        figures = asyncio.run(run(names, args.quick))
    finally:
        hermetic.leave()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end {load}")
    if args.json:
        data = {"machine": info, "quick": args.quick, "figures": [asdict(f) for f in figures]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
