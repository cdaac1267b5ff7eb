"""Metered usage over the real stack (gRPC + mTLS, a node on Ray, CrewAI with the offline
LLM): every attempt's stream carries a `Usage` event right before its closing result or
error and status, with the figures the engine saw."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest

from kodosumi.v1 import event_pb2, usage_pb2, usage_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from kodosumid.config import FlowEntry, PoolConfig
from tests.node.conftest import RunningNode, node_config
from tests.node.helpers import collect, kinds, launch, statuses
from tests.node.test_cli_e2e import koco
from tests.node.users import User

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


# -- the stored record and its read API (UsageService, koco usage) ---------------------------


async def test_the_record_is_stored_and_read_back_over_grpc(node: RunningNode) -> None:
    ann = User(node, "ann")
    try:
        eid = await launch(ann.flows, "search", {"topic": "usage"})
        events = await collect(ann.flows, eid)
        (sent,) = [e.usage for e in usages(events)]
        stub = usage_pb2_grpc.UsageServiceStub(ann.channel)
        record = await stub.GetExecutionUsage(
            usage_pb2.GetExecutionUsageRequest(execution_id=eid), timeout=10
        )
        (attempt,) = record.attempts
        assert attempt.usage == sent and attempt.source == "engine"
        assert attempt.node_id == node.app.config.node_id
        assert record.own.llm_calls == sent.llm_calls and record.total == record.own
        assert record.own.input_tokens == sum(m.input_tokens for m in sent.models) > 0
        mine = await stub.ListUsage(usage_pb2.ListUsageRequest(group_by="user"), timeout=10)
        assert [r.key for r in mine.rows] == [str(ann.identity)]
        assert mine.rows[0].totals.runs == 1
    finally:
        await ann.close()


async def test_a_user_gets_only_their_own_usage(node: RunningNode) -> None:
    await collect(node.flows, await launch(node.flows, "hello", {"name": "admin"}))
    admins = await collect(node.flows, await launch(node.flows, "hello", {"name": "x"}))
    bob = User(node, "bob")
    try:
        stub = usage_pb2_grpc.UsageServiceStub(bob.channel)
        nothing = await stub.ListUsage(usage_pb2.ListUsageRequest(group_by="user"), timeout=10)
        assert list(nothing.rows) == []  # bob ran nothing: everybody else's is not his
        for request in (
            usage_pb2.ListUsageRequest(user="ann"),
            usage_pb2.ListUsageRequest(user="spiffe://kodosumi.local/user/ann"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListUsage(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetExecutionUsage(
                usage_pb2.GetExecutionUsageRequest(execution_id=admins[0].execution_id),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        for request, field in (
            (usage_pb2.ListUsageRequest(group_by="planet"), "group_by"),
            (usage_pb2.ListUsageRequest(since_unix_nano=-1), "since"),
            (usage_pb2.ListUsageRequest(since_unix_nano=9, until_unix_nano=5), "until"),
            (usage_pb2.ListUsageRequest(page_token="forged"), "page_token"),
            (usage_pb2.ListUsageRequest(page_size=-3), "page_size"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListUsage(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (caught.value.details() or "")
    finally:
        await bob.close()
    # Operators and admins see everybody's.
    everyone = await usage_pb2_grpc.UsageServiceStub(node.channel).ListUsage(
        usage_pb2.ListUsageRequest(group_by="user"), timeout=10
    )
    assert len(everyone.rows) >= 2


async def test_koco_usage_as_table_json_and_csv(node: RunningNode) -> None:
    await collect(node.flows, await launch(node.flows, "hello", {"name": "koco"}))
    table = await koco(node, "usage", "--by", "flow", "--since", "1d")
    assert table.exit_code == 0, table.output
    assert "FLOW" in table.output and "hello" in table.output
    as_json = await koco(node, "usage", "--by", "day", "--flow", "hello", "--json")
    (row,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert row["runs"] >= 1 and row["day"] and "models" in row
    as_csv = await koco(node, "usage", "--by", "flow", "--csv", "--until", "2000-01-01")
    assert as_csv.output.splitlines() == [
        "flow,runs,attempts,wall_seconds,cpu_seconds,llm_calls,input_tokens,output_tokens,"
        "tool_calls,input_bytes,output_bytes,artifact_bytes,models"
    ]
    one = await launch(node.flows, "hello")
    await collect(node.flows, one)
    record = await koco(node, "usage", one[:8], "--json")
    assert json.loads(record.output)["own"]["runs"] == 1, record.output
    bad = await koco(node, "usage", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "--since" in bad.output
