"""Per-flow retry policy: a failed attempt ends RETRYING and a new attempt starts, with the
attempt number on every event; worker processes killed outright end the execution FAILED."""

from __future__ import annotations

import os
import signal

import ray

from kodosumi.v1 import event_pb2, flow_pb2
from tests.node.conftest import NodeFactory, RunningNode
from tests.node.helpers import collect, eventually, launch, statuses

S = event_pb2


async def test_failed_attempts_are_retried_and_say_so(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "flaky", {"fail_times": 2})
    events = await collect(shared_node.flows, execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert statuses(events).count(S.EXECUTION_STATUS_RETRYING) == 2
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    retrying = [e for e in events if e.status_changed.status == S.EXECUTION_STATUS_RETRYING]
    assert retrying[0].status_changed.reason.startswith("attempt 1 of 3 failed: RuntimeError")
    lines = [(e.attempt, e.output_line.text) for e in events if e.HasField("output_line")]
    assert lines == [(1, "attempt 1"), (2, "attempt 2"), (3, "attempt 3")]
    assert events[-1].attempt == 3
    assert len([e for e in events if e.HasField("error")]) == 2
    execution = (
        await shared_node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
    ).execution
    assert execution.attempt == 3


async def test_retries_run_out(shared_node: RunningNode) -> None:
    events = await collect(
        shared_node.flows, await launch(shared_node.flows, "flaky", {"fail_times": 5})
    )
    assert statuses(events).count(S.EXECUTION_STATUS_RETRYING) == 2
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert events[-1].attempt == 3


async def _executor_pid(node: RunningNode, execution_id: str) -> int:
    async def dispatched() -> bool:
        reply = await node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
        return bool(reply.execution.status == S.EXECUTION_STATUS_RUNNING)

    await eventually(dispatched)
    assert node.app.store is not None
    record = await node.app.store.get_execution(execution_id)
    assert record is not None
    actor = ray.get_actor(record.executor, namespace="kodosumi")
    return int(await actor.ready.remote())


async def test_a_killed_worker_process_is_retried(start_node: NodeFactory) -> None:
    node = await start_node()
    execution_id = await launch(node.flows, "sleepy-retried", {"seconds": 1})
    os.kill(await _executor_pid(node, execution_id), signal.SIGKILL)
    events = await collect(node.flows, execution_id)
    retrying = [e for e in events if e.status_changed.status == S.EXECUTION_STATUS_RETRYING]
    assert len(retrying) == 1
    assert "died" in retrying[0].status_changed.reason
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert events[-1].attempt == 2


async def test_a_killed_worker_process_fails_the_execution(start_node: NodeFactory) -> None:
    node = await start_node()
    execution_id = await launch(node.flows, "sleepy-isolated", {"seconds": 120})
    os.kill(await _executor_pid(node, execution_id), signal.SIGKILL)
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert "died" in events[-1].status_changed.reason
