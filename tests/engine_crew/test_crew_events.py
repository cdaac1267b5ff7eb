"""CrewAI entrypoints run through ExecutionHost: their steps arrive as typed, ordered events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kodosumi.jsonvalue import struct_to_dict
from kodosumi.v1 import event_pb2
from tests.engine_crew.helpers import Driver, Run

STARTED = event_pb2.STEP_PHASE_STARTED
COMPLETED = event_pb2.STEP_PHASE_COMPLETED
FAILED = event_pb2.STEP_PHASE_FAILED
SUCCEEDED = event_pb2.EXECUTION_STATUS_SUCCEEDED


def assert_well_formed(run: Run, status: int = SUCCEEDED) -> None:
    """Gapless seqs from 1, one terminal status at the end, Result right before success."""
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    assert run.status == status, (run.kinds, [e.message for e in run.of("error")])
    terminal = [
        e
        for e in run.events
        if e.WhichOneof("kind") == "status_changed" and e.status_changed.status >= 5
    ]
    assert len(terminal) == 1
    if status == SUCCEEDED:
        assert run.kinds[-2] == "result"


def assert_steps_paired(run: Run) -> None:
    """Every started step ends exactly once, later, under the same step id."""
    for kind in ("task_step", "agent_step", "llm_call", "tool_call"):
        started: dict[str, int] = {}
        ended: dict[str, int] = {}
        for index, event in enumerate(run.events):
            if event.WhichOneof("kind") != kind:
                continue
            step = getattr(event, kind)
            if step.phase == STARTED:
                assert step.step_id not in started
                started[step.step_id] = index
            elif step.phase in (COMPLETED, FAILED):
                assert step.step_id not in ended, (kind, step.step_id)
                ended[step.step_id] = index
        assert started.keys() == ended.keys(), kind
        assert all(started[s] < ended[s] for s in started), kind


def subsequence(expected: list[Any], actual: list[Any]) -> bool:
    items = iter(actual)
    return all(any(item == want for item in items) for want in expected)


def crewai_extra(event: event_pb2.Event) -> dict[str, Any]:
    return struct_to_dict(event.extra)


async def test_crewbase_class_streams_every_step_in_order(driver: Driver) -> None:
    run = await driver.run("flows.serviceplan:Search", {"topic": "ray"})
    assert_well_formed(run)
    assert_steps_paired(run)
    steps = run.steps()
    assert steps[0] == ("framework_event", 0, "crew_kickoff_started")
    research = [
        ("task_step", STARTED, "research"),
        ("agent_step", STARTED, "Researcher"),
        ("llm_call", STARTED, "Researcher"),
        ("llm_call", COMPLETED, "Researcher"),
        ("tool_call", STARTED, "knowledge_search"),
        ("tool_call", COMPLETED, "knowledge_search"),
        ("llm_call", STARTED, "Researcher"),
        ("llm_call", COMPLETED, "Researcher"),
        ("agent_step", COMPLETED, "Researcher"),
        ("task_step", COMPLETED, "research"),
    ]
    typed = [s for s in steps if s[0] != "framework_event"]
    assert typed[: len(research)] == research
    assert subsequence(
        [
            ("task_step", STARTED, "analyze"),
            ("agent_step", STARTED, "Analyst"),
            ("agent_step", COMPLETED, "Analyst"),
            ("task_step", COMPLETED, "analyze"),
            ("task_step", STARTED, "write"),
            ("tool_call", STARTED, "word_count"),
            ("tool_call", COMPLETED, "word_count"),
            ("task_step", COMPLETED, "write"),
            ("framework_event", 0, "crew_kickoff_completed"),
        ],
        steps,
    )
    assert steps[-1] == ("framework_event", 0, "crew_kickoff_completed")
    # CrewAI's emission order within the crew is kept.
    sequences = [
        int(crewai_extra(e)["emission_sequence"]) for e in run.events if e.HasField("extra")
    ]
    assert sequences == sorted(sequences)

    # Parents: task under the kickoff, agent under its task, LLM and tool under the agent.
    kickoff = next(e for e in run.events if e.framework_event.type == "crew_kickoff_started")
    task = run.of("task_step")[0]
    agent = run.of("agent_step")[0]
    assert task.parent_step_id == crewai_extra(kickoff)["event_id"]
    assert agent.parent_step_id == task.step_id
    assert {c.parent_step_id for c in run.of("llm_call")[:2]} == {agent.step_id}
    assert run.of("tool_call")[0].parent_step_id == agent.step_id

    tool = run.of("tool_call")[1]
    assert json.loads(tool.arguments_json)["query"]
    assert "Ray schedules Python work" in tool.result
    llm = run.of("llm_call")[1]
    assert llm.model == "offline/scripted"
    assert llm.prompt_chars > 0 and llm.completion_chars > 0
    assert llm.usage.total_tokens == llm.usage.prompt_tokens + llm.usage.completion_tokens > 0

    result = run.result
    assert result.text.startswith("## Write a brief about ray")
    assert result.markdown == result.text
    assert [t.task_name for t in result.task_outputs] == ["research", "analyze", "write"]
    assert [t.agent_role for t in result.task_outputs] == ["Researcher", "Analyst", "Writer"]
    completed = [c for c in run.of("llm_call") if c.phase == COMPLETED]
    assert result.usage.total_tokens == sum(c.usage.total_tokens for c in completed)
    assert result.usage.successful_requests == len(completed)


async def test_factory_and_crew_object_entrypoints(driver: Driver) -> None:
    factory = await driver.run("flows.serviceplan:search_crew", {"topic": "grpc"})
    crew_object = await driver.run("flows.serviceplan:quick_search", {"topic": "crewai"})
    for run in (factory, crew_object):
        assert_well_formed(run)
        assert_steps_paired(run)
    assert [t.task_name for t in factory.result.task_outputs] == ["research", "write"]
    assert crew_object.result.task_outputs[0].task_name == "answer"
    assert "crewai" in crew_object.result.text
    # The module's Crew object was copied, not run: its tasks hold no output.
    from flows.serviceplan import quick_search

    assert all(task.output is None for task in quick_search.tasks)


async def test_yaml_spec_runs_with_input_defaults(driver: Driver) -> None:
    from flows.catalog import SEARCH_SPEC

    run = await driver.run(str(SEARCH_SPEC), {"topic": "streaming"})
    assert_well_formed(run)
    assert_steps_paired(run)
    kickoff = next(f for f in run.of("framework_event") if f.type == "crew_kickoff_started")
    assert struct_to_dict(kickoff.data)["inputs"] == {"topic": "streaming", "audience": "engineers"}
    assert [s[2] for s in run.steps() if s[0] == "tool_call"] == [
        "knowledge_search",
        "knowledge_search",
        "word_count",
        "word_count",
    ]
    assert "for engineers" in run.result.text


async def test_hierarchical_yaml_spec(driver: Driver, tmp_path: Any) -> None:
    spec = tmp_path / "manager.yaml"
    spec.write_text(
        """
llm: offline/scripted
process: hierarchical
inputs:
  topic: string
agents:
  researcher:
    role: Researcher
    goal: Research {topic}
    backstory: Thorough.
  writer:
    role: Writer
    goal: Write about {topic}
    backstory: Brief.
tasks:
  brief:
    description: Produce a brief about {topic}.
    expected_output: A brief.
"""
    )
    run = await driver.run(str(spec), {"topic": "agents"})
    assert_well_formed(run)
    assert_steps_paired(run)
    tools = [t for t in run.of("tool_call") if t.phase == STARTED]
    assert tools and tools[0].tool_name.lower().startswith("delegate")
    roles = {a.agent_role for a in run.of("agent_step")}
    assert "Crew Manager" in roles and roles & {"Researcher", "Writer"}


async def test_crewai_flow_streams_flow_methods_and_nested_crew(driver: Driver) -> None:
    run = await driver.run("flows.research:ResearchFlow", {"topic": "ray", "audience": "students"})
    assert_well_formed(run)
    assert_steps_paired(run)
    types = run.framework_types()
    # flow_created: the engine builds the flow inside the execution's event stream.
    assert types[:2] == ["flow_created", "flow_started"] and types[-1] == "flow_finished"
    methods = [
        (f.type, struct_to_dict(f.data).get("method_name"))
        for f in run.of("framework_event")
        if f.type.startswith("method_execution")
    ]
    assert methods == [
        ("method_execution_started", "outline"),
        ("method_execution_finished", "outline"),
        ("method_execution_started", "research"),
        ("method_execution_finished", "research"),
        ("method_execution_started", "publish"),
        ("method_execution_finished", "publish"),
    ]
    # The outline's direct LLM call, then the crew inside `research`.
    steps = run.steps()
    first_llm = next(i for i, s in enumerate(steps) if s[0] == "llm_call")
    assert steps[first_llm][2] == ""  # no agent: a flow step called the model itself
    research_start = steps.index(("framework_event", 0, "crew_kickoff_started"))
    assert first_llm < research_start
    assert ("tool_call", STARTED, "knowledge_search") in steps[research_start:]
    assert "Researching ray" in run.output_text()
    data = run.result_json()
    assert data["state"]["topic"] == "ray" and data["state"]["audience"] == "students"
    assert data["result"].startswith("# Ray for students")
    assert run.result.text == data["result"]
    assert run.result.usage.total_tokens > 0


async def test_parallel_executions_keep_their_events_apart(driver: Driver) -> None:
    topics = ["apples", "pears", "plums"]
    ids = [await driver.start("kodo_crew_cases:slow_crew", {"topic": t}) for t in topics]
    runs = await driver.follow(ids)
    spans = []
    for execution_id, topic in zip(ids, topics, strict=True):
        run = runs[execution_id]
        assert_well_formed(run)
        assert_steps_paired(run)
        others = [t for t in topics if t != topic]
        texts = [
            e.task_step.task_name + e.task_step.output
            for e in run.events
            if e.HasField("task_step")
        ]
        texts += [t.arguments_json + t.result for t in run.of("tool_call")]
        texts += [run.output_text(), run.result.text]
        joined = "\n".join(texts)
        assert topic in joined
        assert not any(other in joined for other in others), (topic, joined)
        # CrewAI's verbose panels went to the execution that printed them.
        assert f"lookup tool called with Research {topic}" in run.output_text()
        assert "Agent: Researcher" in run.output_text()
        completed = [c for c in run.of("llm_call") if c.phase == COMPLETED]
        assert all(c.latency_ms >= 10 for c in completed)  # the model takes 15 ms a call
        assert all(a.duration_ms > 0 for a in run.of("agent_step") if a.phase == COMPLETED)
        times = [e.time_unix_nano for e in run.events if e.HasField("llm_call")]
        spans.append((min(times), max(times)))
    # The executions really ran at the same time (otherwise this test proves little).
    assert max(s[0] for s in spans) < min(s[1] for s in spans)


async def test_task_human_input_round_trip(driver: Driver) -> None:
    answers = ["Mention the warm executor pool", ""]
    prompts: list[str] = []

    def answer(request: event_pb2.InputRequested) -> str:
        prompts.append(request.prompt)
        assert request.kind == event_pb2.INPUT_KIND_TEXT
        assert struct_to_dict(request.schema)["type"] == "string"
        return answers.pop(0)

    run = await driver.run("flows.review:review_crew", {"topic": "ray"}, answer=answer)
    assert_well_formed(run)
    assert_steps_paired(run)
    assert answers == []
    assert "Review the answer of Writer for 'draft'" in prompts[0]
    assert "## Draft a brief about ray." in prompts[0]
    assert "Revised after feedback: Mention the warm executor pool" in prompts[1]
    statuses = [s.status for s in run.of("status_changed")]
    assert statuses == [
        event_pb2.EXECUTION_STATUS_STARTING,
        event_pb2.EXECUTION_STATUS_RUNNING,
        event_pb2.EXECUTION_STATUS_AWAITING_INPUT,
        event_pb2.EXECUTION_STATUS_RUNNING,
        event_pb2.EXECUTION_STATUS_AWAITING_INPUT,
        event_pb2.EXECUTION_STATUS_RUNNING,
        SUCCEEDED,
    ]
    kinds = run.kinds
    first_request = kinds.index("input_requested")
    # The question comes after the answer it is about, and a revision follows the feedback.
    llm_done = [i for i, e in enumerate(run.events) if e.llm_call.phase == COMPLETED]
    assert llm_done[0] < first_request < llm_done[1]
    assert kinds.index("input_provided") < llm_done[1]
    assert run.result.text.endswith("Revised after feedback: Mention the warm executor pool")


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("rejected: the pilot is too small", "Shelved"), ("", "Published")],
)
async def test_flow_human_feedback_routes_on_the_reply(
    driver: Driver, reply: str, outcome: str
) -> None:
    run = await driver.run(
        "flows.review:ApprovalFlow", {"topic": "search"}, answer=lambda request: reply
    )
    assert_well_formed(run)
    request = run.of("input_requested")[0]
    assert request.prompt.startswith("Approve this rollout plan?")
    assert "Rollout plan for search" in request.prompt
    assert run.result.text.startswith(outcome)
    assert run.result_json()["state"]["decision"] == ("rejected" if reply else "approved")


async def test_flow_ask_goes_through_request_input(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:AskFlow", answer=lambda request: "green")
    assert_well_formed(run)
    assert run.of("input_requested")[0].prompt == "Which colour should the report have?"
    assert run.result.text == "The report is green."


async def test_llm_failure_fails_the_execution(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:failing_llm_crew", {"topic": "x"})
    assert_well_formed(run, event_pb2.EXECUTION_STATUS_FAILED)
    failed = [c for c in run.of("llm_call") if c.phase == FAILED]
    assert failed and "model unavailable" in failed[0].error
    assert "crew_kickoff_failed" in run.framework_types()
    assert any(s.phase == FAILED for s in run.of("task_step"))
    error = run.of("error")[0]
    assert "model unavailable" in error.message
    assert run.kinds.index("error") > run.kinds.index("llm_call")


async def test_tool_failure_is_a_failed_tool_call(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:failing_tool_crew", {"topic": "x"})
    assert_well_formed(run)
    assert_steps_paired(run)
    calls = run.of("tool_call")
    assert calls[0].phase == STARTED and calls[0].tool_name == "broken"
    assert calls[1].phase == FAILED and "cannot handle" in calls[1].error


async def test_llm_stream_chunks(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:streaming_crew", {"topic": "x"})
    assert_well_formed(run)
    calls = run.of("llm_call")
    first = calls[0]
    chunks: list[str] = []
    for call in calls[1:]:
        if call.phase != event_pb2.STEP_PHASE_STREAMING:
            assert call.phase == COMPLETED and call.step_id == first.step_id
            assert len("".join(chunks)) == call.completion_chars
            break
        assert call.step_id == first.step_id
        chunks.append(call.chunk)
    assert len(chunks) > 1
    assert "".join(chunks).startswith("Thought:")


async def test_structured_output_becomes_result_json(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:structured_crew", {"topic": "kiwis"})
    assert_well_formed(run)
    data = run.result_json()
    assert set(data) == {"title", "points"} and isinstance(data["title"], str)
    assert run.result.has_json
    assert run.result.task_outputs[-1].json.WhichOneof("kind") == "struct_value"


async def test_streaming_crew_output_is_drained_to_its_result(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:stream_output_crew", {"topic": "figs"})
    assert_well_formed(run)
    assert_steps_paired(run)
    assert ("tool_call", COMPLETED, "lookup") in run.steps()
    assert run.result.text.startswith("## Write about figs.")
    assert [t.task_name for t in run.result.task_outputs] == ["research", "write"]


async def test_cancel_stops_the_crew_at_its_next_step(driver: Driver) -> None:
    tool_calls = 0

    async def cancel_after_two_tool_calls(execution_id: str, event: event_pb2.Event) -> None:
        nonlocal tool_calls
        if event.tool_call.phase == COMPLETED:
            tool_calls += 1
            if tool_calls == 2:
                await driver.host.cancel(execution_id, "enough")

    execution_id = await driver.start(
        "kodo_crew_cases:endless_crew", {"topic": "x"}, cancel_grace_seconds=30.0
    )
    runs = await driver.follow([execution_id], on_event=cancel_after_two_tool_calls, timeout=20)
    run = runs[execution_id]
    assert tool_calls >= 2
    assert run.status == event_pb2.EXECUTION_STATUS_CANCELLED
    # Stopped by itself at its next CrewAI event, not interrupted after the grace period.
    assert run.events[-1].status_changed.reason == "enough"
    assert "result" not in run.kinds


async def test_custom_events_late_classes_and_foreign_threads(driver: Driver) -> None:
    run = await driver.run("kodo_crew_cases:custom_event_crew", {"topic": "x"})
    assert_well_formed(run)
    steps = run.steps()
    tool_start = steps.index(("tool_call", STARTED, "signal"))
    tool_end = steps.index(("tool_call", COMPLETED, "signal"))
    # A class defined while the crew runs is still delivered, in emission order.
    assert steps.index(("framework_event", 0, "late_signal")) in range(tool_start, tool_end)
    late = next(f for f in run.of("framework_event") if f.type == "late_signal")
    assert struct_to_dict(late.data)["note"] == "emitted in the tool"
    # Emitted from a thread that did not inherit the kickoff's context: attributed by the
    # agent it names.
    assert "foreign_signal" in run.framework_types()
