"""Counts the telemetry calls on the event hot path of a process that traces nothing.

Run as a script (`python -m tests.executions.untraced_probe N...`) by
tests/executions/test_untraced_hot_path.py, in a fresh process, so that no other test's
tracer provider is installed. It builds the executions domain without Ray (the in-process
executor over the engine, a real SQLite store, the watch hub), launches `emit_many` with each
N, watches every stream to its end, and prints, per N, the calls made into OpenTelemetry and
into our tracing code (profile hooks on every thread) while the run went from launch to its
terminal event: engine capture -> buffer -> drain -> store -> publish -> watch.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from kodosumi.authz import Principal
from kodosumi.spiffe import SpiffeId
from kodosumi.telemetry import tracing_active
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry, NodeConfig
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.inprocess import InProcessExecutorPool

REPO = Path(__file__).resolve().parents[2]
# Modules whose functions are tracing work: the OpenTelemetry API and SDK, our telemetry
# package, the engine's tracer and the node's run traces.
TRACING = ("opentelemetry", "kodosumi.telemetry", "engine.tracing", "kodosumid.observability")
FLOWS = (FlowEntry("emit-many", "tests.flowlib:emit_many"),)
ANN = Principal(SpiffeId.parse("spiffe://d.test/user/ann"), frozenset({"user"}))

calls: collections.Counter[str] = collections.Counter()
counting = False


def profile(frame: FrameType, event: str, arg: Any) -> None:
    if counting and event == "call":
        module = frame.f_globals.get("__name__", "")
        if module.startswith(TRACING):
            calls[f"{module}.{frame.f_code.co_name}"] += 1


async def run(service: ExecutionService, count: int) -> int:
    record = await service.launch(ANN, "emit-many", {"count": count})
    seen = 0
    async for batch in service.watch(ANN, record.execution_id, 0):
        seen += len(batch)
    return seen


async def main(counts: list[int]) -> dict[str, Any]:
    global counting
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteEventStore(Path(tmp) / "events.sqlite")
        await store.open()
        pool = InProcessExecutorPool()
        config = NodeConfig(
            node_id="n1", state_dir=Path(tmp), flows=FLOWS, python_path=(str(REPO),)
        )
        service = ExecutionService(config, Catalog(FLOWS), store, WatchHub(), pool)
        await service.recover()
        await run(service, 10)  # warm: imports and first-use set-up are not per event
        report: dict[str, Any] = {"tracing_active": tracing_active(), "runs": []}
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            for count in counts:
                calls.clear()
                counting = True
                events = await run(service, count)
                counting = False
                report["runs"].append({"events": events, "calls": dict(calls)})
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        await service.shutdown(0.5)
        await pool.close()
        await store.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main([int(n) for n in sys.argv[1:]]))))
