"""The node's metrics move: read with an in-memory metric reader (the process's meter provider,
as an application embedding a node would install it) and through NodeInfo's counters."""

from __future__ import annotations

from typing import Any

from kodosumi.v1 import flow_pb2, node_pb2
from tests.node.helpers import collect, eventually, launch
from tests.observability.conftest import Telemetry


async def test_counters_histograms_and_gauges_move(telemetry: Telemetry, nodes: Any) -> None:
    node = await nodes(node_id="metered-node")
    started = telemetry.total("kodosumi.executions.started", flow="hello")
    failed = telemetry.total("kodosumi.executions.finished", flow="fails", status="failed")
    events = telemetry.total("kodosumi.events.stored")

    usage_runs = telemetry.total("kodosumi.usage.runs", flow="hello")
    usage_out = telemetry.total("kodosumi.usage.bytes", flow="hello", kind="output")
    hello = await launch(node.flows, "hello", {"name": "metrics"})
    stored = await collect(node.flows, hello)
    await collect(node.flows, await launch(node.flows, "fails"))

    assert telemetry.total("kodosumi.executions.started", flow="hello") == started + 1
    assert (
        telemetry.total("kodosumi.executions.finished", flow="fails", status="failed") == failed + 1
    )
    assert telemetry.total("kodosumi.events.stored") >= events + len(stored)
    # Metered usage (kodosumid/observability/usage_metrics.py), as the run's Usage event says.
    (usage,) = [e.usage for e in stored if e.HasField("usage")]
    assert telemetry.total("kodosumi.usage.runs", flow="hello") == usage_runs + 1
    assert (
        telemetry.total("kodosumi.usage.bytes", flow="hello", kind="output")
        == usage_out + usage.output_bytes
    )
    durations = [
        p
        for p in telemetry.points("kodosumi.execution.duration")
        if p.attributes.get("flow") == "hello" and p.attributes.get("status") == "succeeded"
    ]
    assert durations and durations[0].count >= 1 and durations[0].sum > 0
    assert all(p.attributes["placement"] == "local" for p in durations)

    # Gauges report what the node sampled: its executors, watchers, queue.
    await node.app.observability.evaluate_now()
    assert telemetry.total("kodosumi.pool.executors", state="alive") >= 1
    assert telemetry.points("kodosumi.queue.depth")
    assert telemetry.points("kodosumi.watchers")

    # The same counts reach clients in NodeInfo (what `koco top` turns into rates).
    info = await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=5)
    load = info.node.load
    assert load.executions_started == 2
    assert load.executions_finished == 2
    assert load.executions_failed == 1
    assert load.events_stored >= len(stored)


async def test_a_watcher_and_a_waiting_execution_show_in_the_gauges(
    telemetry: Telemetry, nodes: Any
) -> None:
    node = await nodes(node_id="gauged-node")
    execution_id = await launch(node.flows, "asks")
    stream = node.flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=60
    )
    await stream.__aiter__().__anext__()  # the watcher is registered once events arrive

    async def waiting() -> bool:
        await node.app.observability.evaluate_now()
        return (
            telemetry.total("kodosumi.executions.active", status="awaiting_input") >= 1
            and telemetry.total("kodosumi.watchers") >= 1
        )

    try:
        await eventually(waiting, timeout=30)
    finally:
        stream.cancel()


def _scoped(telemetry: Telemetry, name: str, node_id: str) -> list[Any]:
    """Points of one node's instrument (its meter carries `kodosumi.node_id`)."""
    data = telemetry.reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            if (scope.scope.attributes or {}).get("kodosumi.node_id") != node_id:
                continue
            for metric in scope.metrics:
                if metric.name == name:
                    found += list(metric.data.data_points)
    return found


async def test_events_stored_counts_what_the_node_writes_and_idle_is_zero(
    telemetry: Telemetry, nodes: Any
) -> None:
    node = await nodes(node_id="counting-node")
    stored = 0
    for flow, inputs in (("hello", {"name": "a"}), ("fails", {}), ("hello", {"name": "b"})):
        stored += len(await collect(node.flows, await launch(node.flows, flow, inputs)))
    # A cancelled run: its CANCELLED status is written by the node, not by an executor.
    sleepy = await launch(node.flows, "sleepy", {"seconds": 30})
    await node.flows.CancelExecution(flow_pb2.CancelExecutionRequest(execution_id=sleepy))
    stored += len(await collect(node.flows, sleepy))

    # Every stored event counts: the PENDING and inputs the node writes at launch as well.
    info = await node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=5)
    assert info.node.load.events_stored == stored
    counted = sum(p.value for p in _scoped(telemetry, "kodosumi.events.stored", "counting-node"))
    assert counted == stored

    # Idle: every active status reports 0 (a backend would keep a missing one's last value).
    await node.app.observability.evaluate_now()
    active = _scoped(telemetry, "kodosumi.executions.active", "counting-node")
    by_status = {p.attributes["status"]: p.value for p in active}
    assert {"pending", "starting", "running", "awaiting_input"} <= set(by_status)
    assert set(by_status.values()) == {0}
