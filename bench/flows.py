"""Flows the benchmarks run (imported inside executor actors as `bench.flows`)."""

from __future__ import annotations

from engine import FlowContext


def emit_many(count: int, size: int, ctx: FlowContext) -> dict[str, int]:
    """Emits `count` progress events with a `size`-character message, as fast as it can."""
    message = "x" * size
    for _ in range(count):
        ctx.progress(message=message)
    return {"emitted": count}


def noop() -> str:
    """Returns at once: launch latency without any flow work."""
    return "done"


def sleepy(seconds: float, ctx: FlowContext) -> str:
    """Sleeps cooperatively (a cancel wakes it): a running execution that does nothing."""
    ctx.sleep(seconds)
    return "slept"


def paced(rate: float, count: int, start_after: float, ctx: FlowContext) -> dict[str, int]:
    """Waits `start_after` seconds (watchers attach meanwhile), then emits `count` progress
    events at `rate` per second, each stamped with its emission time (the fan-out bench)."""
    import time

    ctx.sleep(start_after)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ctx.progress(message="x" * 46)
    return {"emitted": count}
