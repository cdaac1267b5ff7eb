"""With tracing off, no event pays for tracing: engine capture -> buffer -> drain -> store ->
publish -> watch make no span, context or attribute call per event.

Measured in a fresh process (tests/executions/untraced_probe.py), since a test session may
hold another test's tracer provider: profile hooks count every call into OpenTelemetry and
into our tracing code during a run of 10 events and one of 2,000. Before, the engine's
`RunTracer.observe` ran for every event (five such calls each, ~10,000 for 2,000 events).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.observers import UntracedRun
from engine.spec import ExecutionSpec
from kodosumi.v1 import event_pb2

REPO = Path(__file__).resolve().parents[2]


def test_no_tracing_call_per_event_when_tracing_is_off() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.executions.untraced_probe", "10", "2000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tracing_active"] is False
    small, large = report["runs"]
    assert small["events"] >= 10 and large["events"] >= 2000
    # The same few calls per run (one launch, one run), however many events it has.
    assert large["calls"] == small["calls"], large["calls"]
    assert sum(large["calls"].values()) < 50
    assert not any(name.endswith(".observe") for name in large["calls"])


def test_an_untraced_run_still_names_the_trace_of_a_traced_launch() -> None:
    # A node that stopped tracing resumes a run whose launch was traced: its events keep
    # the trace's ids, as the no-op tracer stamped them before.
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    run = UntracedRun(ExecutionSpec("e1", "f", "m:f", {}, traceparent=traceparent))
    event = event_pb2.Event()
    event.progress.message = "step"
    run.observe(event)
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert event.span_id == "b7ad6b7169203331"
    assert run.stamps


def test_an_untraced_run_ignores_a_bad_traceparent() -> None:
    run = UntracedRun(ExecutionSpec("e1", "f", "m:f", {}, traceparent="00-zz-not-a-context"))
    event = event_pb2.Event()
    run.observe(event)
    assert event.trace_id == "" and not run.stamps
