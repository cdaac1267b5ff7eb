"""No tracing work per event when tracing is off (issue 10): the engine's hot path in process.

One execution of `bench.flows:emit_many` emits N progress events into an `ExecutionHost`
(the executor actor's insides, no Ray), which this process drains and acknowledges as the
node does: emit -> buffer -> drain. The baseline, in the same process and rounds, is the
same run with every event passed through `RunTracer.observe`, as every event was before
(`engine.observers.observer_for` now gives no observer at all while the process records no
spans). Rounds alternate; medians. The process must trace nothing (no SDK tracer provider).

    .venv/bin/python -m bench --only untraced
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.report import Figure, Result, Table, fmt
from engine import observers, tracing
from engine.host import ExecutionHost
from engine.spec import ExecutionSpec
from kodosumi.statuses import TERMINAL
from kodosumi.telemetry import tracing_active

NAME = "untraced"


@contextmanager
def traced_per_event() -> Iterator[None]:
    """The engine as before: a `RunTracer` observes every event, tracing or not."""
    # The runner asks `engine.observers` for each run's observer.
    saved = observers.observer_for
    setattr(observers, "observer_for", lambda spec: tracing.RunTracer(spec).observe)  # noqa: B010
    try:
        yield
    finally:
        setattr(observers, "observer_for", saved)  # noqa: B010


async def one_run(number: int, count: int) -> float:
    host = ExecutionHost(buffer_capacity=10_000)
    execution_id = f"untraced-{number}"
    spec = ExecutionSpec(
        execution_id, "emit", "bench.flows:emit_many", {"count": count, "size": 46}
    )
    started = time.perf_counter()
    await host.start(spec.to_dict())
    acked, ended = 0, False
    while not ended:
        events, statuses = await host.drain({execution_id: acked}, 10_000, 1.0)
        acked += len(events.get(execution_id, []))
        ended = any(status in TERMINAL for _, status, _ in statuses.get(execution_id, []))
    return count / (time.perf_counter() - started)


async def benchmark(quick: bool) -> Result:
    if tracing_active():
        raise RuntimeError("this process records spans: the untraced path cannot be measured")
    count, rounds = (50_000, 3) if quick else (200_000, 5)
    await one_run(0, 1_000)  # warm: imports, the buffer's first use
    before: list[float] = []
    after: list[float] = []
    for i in range(rounds):
        with traced_per_event():
            before.append(await one_run(2 * i + 1, count))
        after.append(await one_run(2 * i + 2, count))
    b, a = statistics.median(before), statistics.median(after)
    rows = [
        ["before: RunTracer.observe per event", fmt(b), " ".join(map(fmt, before)), "1.00"],
        ["after: no observer", fmt(a), " ".join(map(fmt, after)), f"{a / b:.2f}"],
    ]
    table = Table(
        f"engine emit -> buffer -> drain, {count:,} events of 98 bytes, tracing off",
        ["path", "events/s", "rounds", "ratio"],
        rows,
    )
    figure = Figure(NAME, "untraced emit path", a, "ev/s", "RunTracer per event", b, "faster")
    return Result([table], [figure])
