"""Metered usage over the real stack (gRPC + mTLS, a node on Ray, CrewAI with the offline
LLM): every attempt's stream carries a `Usage` event right before its closing result or
error and status, with the figures the engine saw."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from kodosumi.v1 import event_pb2
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from kodosumid.config import FlowEntry, PoolConfig
from tests.node.conftest import RunningNode, node_config
from tests.node.helpers import collect, kinds, launch, statuses

S = event_pb2
FLOWS = (
    *example_flows(),
    FlowEntry("fails", "tests.flowlib:fails"),
    FlowEntry("flaky", "tests.flowlib:flaky", retry_attempts=2, retry_backoff_seconds=0.05),
)


@pytest.fixture(scope="module")
async def node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    state = tmp_path_factory.mktemp("usage-node")
    config = node_config(state, node_id="usage-node")
    pool = replace(config.pool, preload_modules=PoolConfig().preload_modules)
    app = NodeApp(replace(config, flows=FLOWS, pool=pool))
    await app.start()
    running = RunningNode(app)
    yield running
    await running.close()
    await app.stop()


def usages(events: list[event_pb2.Event]) -> list[event_pb2.Event]:
    return [e for e in events if e.HasField("usage")]


async def test_a_crew_run_reports_its_usage_before_it_ends(node: RunningNode) -> None:
    events = await collect(node.flows, await launch(node.flows, "search", {"topic": "ray"}))
    assert kinds(events)[-3:] == ["usage", "result", "status_changed"]
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    (event,) = usages(events)
    usage = event.usage
    assert usage.attempt == 1
    assert 0 < usage.wall_seconds < 300
    assert 0 <= usage.cpu_seconds <= usage.wall_seconds + 1
    # The figures are the stream's own: the LLM calls and tokens it reported, per model.
    calls = [e.llm_call for e in events if e.HasField("llm_call") and e.llm_call.phase == 2]
    assert usage.llm_calls == len(calls) > 0
    (model,) = usage.models
    assert model.model == calls[0].model and model.calls == len(calls)
    assert model.input_tokens == sum(c.usage.prompt_tokens for c in calls) > 0
    assert model.output_tokens == sum(c.usage.completion_tokens for c in calls) > 0
    tools = [e for e in events if e.HasField("tool_call") and e.tool_call.phase in (2, 3)]
    assert usage.tool_calls == len(tools) > 0
    assert usage.input_bytes == len(b'{"topic": "ray"}')
    result = events[-2].result
    assert usage.output_bytes >= len(result.text.encode()) > 0


async def test_a_plain_flow_and_a_failed_one_report_usage_too(node: RunningNode) -> None:
    events = await collect(node.flows, await launch(node.flows, "hello", {"name": "ada"}))
    (usage,) = [e.usage for e in usages(events)]
    assert usage.llm_calls == 0 and not usage.models and usage.tool_calls == 0
    assert usage.output_bytes > 0 and usage.wall_seconds > 0
    failed = await collect(node.flows, await launch(node.flows, "fails"))
    assert kinds(failed)[-3:] == ["usage", "error", "status_changed"]
    assert statuses(failed)[-1] == S.EXECUTION_STATUS_FAILED


async def test_each_attempt_reports_its_own_usage(node: RunningNode) -> None:
    events = await collect(node.flows, await launch(node.flows, "flaky", {"fail_times": 1}))
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert [e.usage.attempt for e in usages(events)] == [1, 2]
    assert [e.attempt for e in usages(events)] == [1, 2]
