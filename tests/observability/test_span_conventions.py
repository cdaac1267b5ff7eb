"""Spans say what happened the way OpenTelemetry readers expect: a failed run or step carries
an exception event (type, message, stack), LLM calls are CLIENT spans with the GenAI
attributes, one attribute names the execution on every span that concerns it, and a
CancelExecution span names the execution and links to the run's trace.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from engine.events import error
from engine.genai import provider_of
from engine.spec import ExecutionSpec
from engine.tracing import RunTracer
from kodoclient import AsyncClient, ConnectConfig
from kodosumi.telemetry import traceparent_for_trace
from kodosumi.telemetry.names import EXECUTION_ID
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc
from tests.node.helpers import eventually
from tests.observability.collector import Collector, SpanRecord
from tests.observability.conftest import Telemetry, exporting

S = event_pb2


def _run_tracer() -> tuple[RunTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spec = ExecutionSpec(
        "e9", "crew", "m:f", {}, traceparent=traceparent_for_trace("ab" * 16), node_id="n1"
    )
    return RunTracer(spec, provider.get_tracer("test")), exporter


def test_llm_spans_follow_the_genai_conventions_and_failures_carry_exceptions() -> None:
    tracer, exporter = _run_tracer()

    def emit(**kind: Any) -> None:
        event = event_pb2.Event(time_unix_nano=1_000)
        for name, value in kind.items():
            getattr(event, name).CopyFrom(value)
        tracer.observe(event)

    model = "openai/gpt-4o-mini"
    emit(llm_call=S.LlmCall(step_id="l", phase=S.STEP_PHASE_STARTED, model=model))
    emit(llm_call=S.LlmCall(step_id="l", phase=S.STEP_PHASE_COMPLETED, model=model))
    emit(tool_call=S.ToolCall(step_id="t", phase=S.STEP_PHASE_STARTED, tool_name="search"))
    failure = "ConnectionError: the index is down"
    emit(tool_call=S.ToolCall(step_id="t", phase=S.STEP_PHASE_FAILED, error=failure))
    try:
        raise KeyError("missing")
    except KeyError as e:
        emit(**{"error": error(e).error})
    emit(status_changed=S.StatusChanged(status=S.EXECUTION_STATUS_FAILED, reason="KeyError"))

    spans = {s.name: s for s in exporter.get_finished_spans()}
    llm = spans[f"chat {model}"]
    assert llm.kind == SpanKind.CLIENT
    assert llm.attributes["gen_ai.operation.name"] == "chat"
    assert llm.attributes["gen_ai.provider.name"] == "openai"
    assert llm.attributes["gen_ai.request.model"] == model
    # Every span of the run names the execution with the same attribute.
    assert {s.attributes[EXECUTION_ID] for s in spans.values()} == {"e9"}

    [tool_exception] = [e for e in spans["tool search"].events if e.name == "exception"]
    assert tool_exception.attributes["exception.type"] == "ConnectionError"
    assert tool_exception.attributes["exception.message"] == "the index is down"
    [run_exception] = [e for e in spans["execution crew"].events if e.name == "exception"]
    assert run_exception.attributes["exception.type"] == "KeyError"
    assert "missing" in run_exception.attributes["exception.message"]
    assert "Traceback" in run_exception.attributes["exception.stacktrace"]
    assert spans["execution crew"].status.status_code.name == "ERROR"


def test_providers_of_model_names() -> None:
    assert provider_of("anthropic/claude-3-5-sonnet") == "anthropic"
    assert provider_of("gpt-4o") == "openai"
    assert provider_of("bedrock/anthropic.claude-v2") == "aws.bedrock"
    assert provider_of("offline/scripted") == "offline"
    assert provider_of("my-own-model") == ""  # not guessed


def _of(spans: list[SpanRecord], execution_id: str, prefix: str) -> list[SpanRecord]:
    return [
        s
        for s in spans
        if s.name.startswith(prefix) and s.attributes.get(EXECUTION_ID) == execution_id
    ]


async def test_a_failed_run_exports_its_exception_and_a_cancel_links_to_the_run(
    telemetry: Telemetry, collector: Collector, nodes: Any
) -> None:
    node = await nodes(node_id="conventions-node", telemetry=exporting(collector))
    tls = node.app.client_files.read()
    async with AsyncClient(ConnectConfig(target=node.app.address, tls=tls)) as client:
        failed = await client.launch("fails")
        await client.wait(failed.execution_id)
        sleeper = await client.launch("sleepy", {"seconds": 30})
    # The cancel comes from another client, in a trace of its own (an operator's shell).
    telemetry.spans.clear()
    async with AsyncClient(ConnectConfig(target=node.app.address, tls=tls)) as operator:
        await operator.cancel(sleeper.execution_id, "enough")
        await operator.wait(sleeper.execution_id)

    async def exported() -> bool:
        return bool(_of(collector.spans, failed.execution_id, "execution "))

    await eventually(exported, timeout=30)
    [run] = _of(collector.spans, failed.execution_id, "execution ")
    [exception] = [attrs for name, attrs in run.events if name == "exception"]
    assert exception["exception.type"] == "ValueError"
    assert exception["exception.message"] == "this flow always fails"
    assert "Traceback" in exception["exception.stacktrace"]

    spans = telemetry.finished()
    [cancel] = [s for s in spans if s.name == "kodosumi.v1.FlowService/CancelExecution"]
    assert cancel.attributes[EXECUTION_ID] == sleeper.execution_id
    assert cancel.trace_id != sleeper.trace_id
    assert [trace_id for trace_id, _ in cancel.links] == [sleeper.trace_id]
    # The SDK's spans name the execution with the same attribute as the node's.
    [sdk_cancel] = [s for s in spans if s.name == "kodoclient CancelExecution"]
    assert sdk_cancel.attributes[EXECUTION_ID] == sleeper.execution_id
    assert not [s for s in spans if "execution_id" in s.attributes]

    # A caller's id of its own choosing size is cut on the node's span, and is refused.
    stub = flow_pb2_grpc.FlowServiceStub(node.channel)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetExecution(flow_pb2.GetExecutionRequest(execution_id="f" * 100_000))
    [probe] = [
        s
        for s in telemetry.finished()
        if s.name == "kodosumi.v1.FlowService/GetExecution"
        and str(s.attributes.get(EXECUTION_ID, "")).startswith("ffff")
    ]
    assert len(probe.attributes[EXECUTION_ID]) <= 64
