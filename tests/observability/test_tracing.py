"""One connected trace per run: the SDK call, the node's server span, the execution span in the
executor (another process, exporting over OTLP to a loopback collector), and a span for each
agent, task, LLM call and tool call of an offline CrewAI crew — and the same across a launch
that a node forwards to its peer. Events and the execution carry the trace and span ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kodoclient import AsyncClient, ConnectConfig
from kodosumi.v1 import event_pb2
from kodosumid.catalog import example_flows
from kodosumid.config import PoolConfig
from tests.node.helpers import eventually
from tests.observability.collector import Collector, SpanRecord
from tests.observability.conftest import Telemetry, exporting
from tests.peers.conftest import Cluster

PRELOAD = PoolConfig().preload_modules
STEP_KINDS = {"task", "agent", "llm", "tool"}


def union(*sources: Iterable[SpanRecord]) -> dict[str, SpanRecord]:
    """Spans by id (the node's spans arrive both in memory and over OTLP)."""
    spans: dict[str, SpanRecord] = {}
    for source in sources:
        for span in source:
            spans.setdefault(span.span_id, span)
    return spans


def ancestry(spans: dict[str, SpanRecord], span: SpanRecord) -> list[SpanRecord]:
    """The span and its ancestors up to the root; fails on a missing link."""
    chain = [span]
    while chain[-1].parent_id:
        parent = spans.get(chain[-1].parent_id)
        assert parent is not None, f"parent {chain[-1].parent_id} of {chain[-1].name} missing"
        chain.append(parent)
    return chain


def execution_spans(collector: Collector, execution_id: str) -> list[SpanRecord]:
    return [
        s
        for s in collector.spans
        if s.name.startswith("execution ")
        and s.attributes.get("kodosumi.execution_id") == execution_id
    ]


async def test_one_trace_from_the_client_to_every_crew_step(
    telemetry: Telemetry, collector: Collector, nodes: object
) -> None:
    node = await nodes(  # type: ignore[operator]
        node_id="traced-node",
        flows=example_flows(),
        pool=PoolConfig(shared_executors=1, warm_executors=0, preload_modules=PRELOAD),
        telemetry=exporting(collector),
    )
    tls = node.app.client_files.read()
    async with AsyncClient(ConnectConfig(target=node.app.address, tls=tls)) as client:
        execution = await client.launch("search", {"topic": "tracing"})
        execution_id = execution.execution_id
        final = await client.wait(execution_id)
        events = await client.history(execution_id)
    assert final.status == event_pb2.EXECUTION_STATUS_SUCCEEDED

    async def steps_arrived() -> bool:
        kinds = {s.attributes.get("kodosumi.step") for s in collector.spans}
        return bool(execution_spans(collector, execution_id)) and kinds >= STEP_KINDS

    await eventually(steps_arrived, timeout=30)
    spans = union(telemetry.finished(), collector.spans)
    [run] = execution_spans(collector, execution_id)

    # The execution, its events and its spans share the client's trace.
    assert final.trace_id == run.trace_id
    assert {e.trace_id for e in events} == {run.trace_id}
    in_trace = [s for s in spans.values() if s.trace_id == run.trace_id]
    # The executor exported its spans itself, from its own process.
    assert {s.service for s in in_trace if s.name == run.name} == {"kodosumi-executor"}

    # tool -> ... -> agent -> ... -> execution (executor) -> LaunchExecution (node) -> client.
    tool = next(s for s in in_trace if s.attributes.get("kodosumi.step") == "tool")
    chain = ancestry(spans, tool)
    names = [s.name for s in chain]
    assert chain[0].attributes["gen_ai.tool.name"]
    assert any(s.attributes.get("kodosumi.step") == "agent" for s in chain)
    assert any(s.attributes.get("kodosumi.step") == "task" for s in chain)
    at = names.index(run.name)
    assert chain[at + 1].name == "kodosumi.v1.FlowService/LaunchExecution"
    # The node exported its server span to the collector as well.
    assert chain[at + 1].span_id in {c.span_id for c in collector.spans}
    assert chain[at + 2].name == "/kodosumi.v1.FlowService/LaunchExecution"  # gRPC client span
    assert chain[-1].name == "kodoclient LaunchExecution"  # the SDK call is the root

    llm = next(s for s in in_trace if s.attributes.get("kodosumi.step") == "llm")
    assert llm.attributes["gen_ai.request.model"]
    assert llm.attributes["gen_ai.usage.input_tokens"] > 0
    assert ancestry(spans, llm)[-1].name == "kodoclient LaunchExecution"

    # Every step event names a span of the trace; a step's events name the same span.
    step_events = [e for e in events if e.WhichOneof("kind") in ("llm_call", "tool_call")]
    assert step_events and all(e.span_id in spans for e in step_events)

    # LLM tokens by model reach the collector as a metric of the executor.
    async def tokens_exported() -> bool:
        return bool(collector.latest("kodosumi.llm.tokens", type="prompt"))

    await eventually(tokens_exported, timeout=30)
    # ... and the node's own metrics go to the same collector.
    assert await _eventually_value(collector, "kodosumi.executions.finished", status="succeeded")


async def _eventually_value(collector: Collector, name: str, **labels: str) -> bool:
    async def arrived() -> bool:
        return bool(collector.latest(name, **labels))

    await eventually(arrived, timeout=30)
    return True


async def test_a_run_forwarded_to_a_peer_continues_the_same_trace(
    telemetry: Telemetry, collector: Collector, cluster: Cluster
) -> None:
    crews = tuple(f for f in example_flows() if f.name == "search")
    pool = PoolConfig(shared_executors=1, warm_executors=0, preload_modules=PRELOAD)
    registry = await cluster.registry()
    await cluster.node(
        "node-b", crews, registry=registry, pool=pool, telemetry=exporting(collector)
    )
    a = await cluster.node(
        "node-a", (), registry=registry, pool=replace(pool, preload_modules=()),
        telemetry=exporting(collector),
    )  # fmt: skip
    assert a.network is not None

    async def b_offers_search() -> bool:
        peer = a.network.table.get("node-b")  # type: ignore[union-attr]
        return peer is not None and "search" in peer.flows and peer.routable

    await eventually(b_offers_search, timeout=20)
    config = ConnectConfig(target=a.address, tls=cluster.pki.user("alice"))
    async with AsyncClient(config) as client:
        execution = await client.launch("search", {"topic": "peers"})
        final = await client.wait(execution.execution_id)
        events = await client.history(execution.execution_id)
    assert final.status == event_pb2.EXECUTION_STATUS_SUCCEEDED
    assert final.trace_id

    async def ran_on_b() -> bool:
        return any(
            s.attributes.get("kodosumi.node_id") == "node-b"
            for s in execution_spans(collector, execution.execution_id)
        )

    await eventually(ran_on_b, timeout=30)
    spans = union(telemetry.finished(), collector.spans)
    [run] = execution_spans(collector, execution.execution_id)
    assert run.trace_id == final.trace_id
    assert {e.trace_id for e in events} == {final.trace_id}  # relayed events keep B's stamps

    chain = ancestry(spans, run)
    servers = [s for s in chain if s.name == "kodosumi.v1.FlowService/LaunchExecution"]
    # B served A's forwarded launch, A served the client's: two server spans, one trace.
    assert len(servers) == 2
    assert chain[-1].name == "kodoclient LaunchExecution"
    assert all(s.trace_id == final.trace_id for s in chain)
    # The registry's server spans are traced as well (nodes registering and heartbeating).
    assert any(s.name.startswith("kodosumi.v1.RegistryService/") for s in spans.values())
