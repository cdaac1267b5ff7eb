"""Plain Python flows through the whole path: sync, async, generators, output, failures."""

from __future__ import annotations

import json

from google.protobuf import json_format

from kodosumi.v1 import event_pb2, flow_pb2
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, kinds, launch, statuses

S = event_pb2


async def test_stdout_and_logs_become_events_of_their_execution(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "chatty", {"lines": 3})
    events = await collect(shared_node.flows, execution_id)
    lines = [e.output_line.text for e in events if e.HasField("output_line")]
    assert lines == ["line 0", "line 1", "line 2"]
    logs = [e.log_record for e in events if e.HasField("log_record")]
    assert [(r.logger, r.message) for r in logs] == [("tests.flowlib", "a warning")]
    assert logs[0].level == S.LOG_LEVEL_WARNING
    result = next(e.result for e in events if e.HasField("result"))
    assert result.markdown == "# done"


async def test_async_flow_returns_json(shared_node: RunningNode) -> None:
    events = await collect(
        shared_node.flows, await launch(shared_node.flows, "async-hello", {"name": "ann"})
    )
    result = next(e.result for e in events if e.HasField("result"))
    assert result.has_json
    assert json_format.MessageToDict(result.json) == {"greeting": "hi ann"}
    assert json.loads(result.text) == {"greeting": "hi ann"}


async def test_generator_progress_then_result(shared_node: RunningNode) -> None:
    events = await collect(
        shared_node.flows, await launch(shared_node.flows, "counting", {"steps": 4})
    )
    fractions = [e.progress.fraction for e in events if e.HasField("progress")]
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    assert kinds(events)[-2:] == ["result", "status_changed"]
    assert next(e.result.text for e in events if e.HasField("result")) == "counted"


async def test_a_failing_flow_ends_failed_with_its_error(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "fails")
    events = await collect(shared_node.flows, execution_id)
    error = next(e.error for e in events if e.HasField("error"))
    assert error.type == "ValueError"
    assert error.message == "this flow always fails"
    assert "Traceback" in error.traceback
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    execution = (
        await shared_node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
    ).execution
    assert execution.status == S.EXECUTION_STATUS_FAILED
    assert execution.status_reason == "ValueError: this flow always fails"
    assert execution.last_seq == events[-1].seq
    assert execution.end_time.ToNanoseconds() >= execution.start_time.ToNanoseconds() > 0


async def test_timeout_ends_timed_out(shared_node: RunningNode) -> None:
    events = await collect(
        shared_node.flows, await launch(shared_node.flows, "times-out", {"seconds": 60})
    )
    assert statuses(events)[-1] == S.EXECUTION_STATUS_TIMED_OUT
    assert "timed out after 0.5s" in events[-1].status_changed.reason


async def test_list_executions_pages_and_filters(shared_node: RunningNode) -> None:
    ids = [await launch(shared_node.flows, "hello", {"name": f"n{i}"}) for i in range(5)]
    for execution_id in ids:
        await collect(shared_node.flows, execution_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await shared_node.flows.ListExecutions(
            flow_pb2.ListExecutionsRequest(page_size=2, page_token=token, flow="hello"),
            timeout=10,
        )
        assert len(page.executions) <= 2
        seen += [e.execution_id for e in page.executions]
        token = page.next_page_token
        if not token:
            break
    assert set(ids) <= set(seen)
    assert len(seen) == len(set(seen))
    failed = await shared_node.flows.ListExecutions(
        flow_pb2.ListExecutionsRequest(statuses=[S.EXECUTION_STATUS_FAILED]), timeout=10
    )
    assert all(e.status == S.EXECUTION_STATUS_FAILED for e in failed.executions)
    assert not set(ids) & {e.execution_id for e in failed.executions}
