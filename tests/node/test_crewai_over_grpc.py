"""CrewAI entrypoints through the whole stack: gRPC + mTLS, a node with Ray, the engine's
event-bus interception, the offline LLM. The node serves the default example catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from kodosumi.jsonvalue import python_to_value
from kodosumi.v1 import event_pb2, flow_pb2
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from kodosumid.config import FlowEntry, PoolConfig
from tests.node.conftest import RunningNode, node_config
from tests.node.helpers import collect, kinds, launch, statuses

S = event_pb2
PRELOAD = PoolConfig().preload_modules
BROKEN_SPEC = """\
name: broken
agents:
  researcher:
    role: Researcher
    goal: Find things
    backstory: Curious.
    llm: offline/scripted
tasks:
  research:
    description: Research the usual suspects.
    expected_output: Notes.
    agent: nobody
"""


@pytest.fixture(scope="module")
async def crew_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    state = tmp_path_factory.mktemp("crew-node")
    broken = state / "broken.yaml"
    broken.write_text(BROKEN_SPEC)
    flows = (*example_flows(), FlowEntry("broken-yaml", str(broken)))
    config = node_config(state, node_id="crew-node")
    app = NodeApp(replace(config, flows=flows, pool=replace(config.pool, preload_modules=PRELOAD)))
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


def _steps(events: list[event_pb2.Event]) -> list[str]:
    return [k for k in kinds(events) if k in {"task_step", "agent_step", "llm_call", "tool_call"}]


@pytest.mark.parametrize("flow", ["search", "search-yaml"])
async def test_crew_steps_stream_in_order_and_the_result_comes_last(
    crew_node: RunningNode, flow: str
) -> None:
    events = await collect(crew_node.flows, await launch(crew_node.flows, flow, {"topic": "ray"}))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    steps = _steps(events)
    assert {"task_step", "agent_step", "llm_call", "tool_call"} <= set(steps)
    assert steps[0] == "task_step"
    first_task = next(e.task_step for e in events if e.HasField("task_step"))
    assert first_task.phase == S.STEP_PHASE_STARTED
    tool = next(e.tool_call for e in events if e.HasField("tool_call"))
    assert tool.tool_name
    llm = next(e.llm_call for e in events if e.HasField("llm_call") and e.llm_call.phase == 2)
    assert llm.model and llm.usage.total_tokens > 0
    assert kinds(events)[-2:] == ["result", "status_changed"]
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    result = events[-2].result
    assert result.text and len(result.task_outputs) >= 2
    assert result.usage.total_tokens > 0


async def test_a_crewai_flow_runs_with_its_methods_as_events(crew_node: RunningNode) -> None:
    events = await collect(
        crew_node.flows, await launch(crew_node.flows, "research-flow", {"topic": "grpc"})
    )
    framework = [e.framework_event.type for e in events if e.HasField("framework_event")]
    assert any("method" in t for t in framework)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_two_crews_in_parallel_keep_their_events_apart(crew_node: RunningNode) -> None:
    ids = [await launch(crew_node.flows, "search", {"topic": topic}) for topic in ("ray", "grpc")]
    first, second = await asyncio.gather(*(collect(crew_node.flows, i) for i in ids))
    for events, own, other in ((first, "ray", "grpc"), (second, "grpc", "ray")):
        assert all(e.execution_id == events[0].execution_id for e in events)
        text = " ".join(
            e.task_step.description + e.task_step.output for e in events if e.HasField("task_step")
        ).lower()
        assert own in text
        assert other not in text
        assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_task_human_input_round_trip(crew_node: RunningNode) -> None:
    execution_id = await launch(crew_node.flows, "review", {"topic": "kodosumi"})
    request = None
    call = crew_node.flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=60
    )
    async for response in call:
        found = [e for e in response.events if e.HasField("input_requested")]
        if found:
            request = found[0].input_requested
            call.cancel()
            break
    assert request is not None

    async def answer(value: object) -> None:
        await crew_node.flows.ProvideInput(
            flow_pb2.ProvideInputRequest(
                execution_id=execution_id,
                request_id=request.request_id,
                value=python_to_value(value),
            ),
            timeout=10,
        )

    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await answer({"not": "text"})
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await answer("")  # an empty reply accepts the draft
    events = await collect(crew_node.flows, execution_id)
    assert S.EXECUTION_STATUS_AWAITING_INPUT in statuses(events)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_a_yaml_spec_error_names_file_line_and_key(crew_node: RunningNode) -> None:
    # Issue 17: found when the node checked its catalog; the launch is refused with the
    # location (an execution of a broken spec fails the same way: tests/engine_crew).
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await launch(crew_node.flows, "broken-yaml", {})
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    message = str(refused.value.details()).split("is unavailable: ", 1)[1]
    location, _, problem = message.partition(": ")
    path, line, _column = location.rsplit(":", 2)
    assert Path(path).name == "broken.yaml"
    assert line == "12"  # the line of `agent: nobody`
    assert problem.startswith("tasks.research.agent")
    assert "nobody" in problem
