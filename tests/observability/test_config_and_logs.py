"""Export settings (off by default; config over the OTEL_* variables), the daemons' log lines
(JSON with the execution and trace of the run they concern), and the engine's span tracer
on its own."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.spec import ExecutionSpec
from engine.tracing import RunTracer
from kodosumi.errors import InvalidArgument
from kodosumi.logs import JsonFormatter, RunContextFilter, TextFormatter, bind_run
from kodosumi.telemetry import (
    GRPC,
    HTTP,
    NONE,
    OTLP,
    TelemetryConfig,
    TelemetryConfigError,
    plan_export,
    traceparent_for_trace,
)
from kodosumi.v1 import event_pb2
from kodosumid.config import load_config

S = event_pb2


def test_nothing_is_exported_unless_asked() -> None:
    plan = plan_export(TelemetryConfig(), env={})
    assert (plan.traces, plan.metrics, plan.exports) == (NONE, NONE, False)


def test_the_standard_variables_turn_export_on() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_METRICS_EXPORTER": "none"}
    plan = plan_export(TelemetryConfig(), env=env)
    assert (plan.traces, plan.metrics) == (OTLP, NONE)
    assert plan.traces_endpoint == ""  # the exporter reads the variable itself
    http = plan_export(TelemetryConfig(), env={**env, "OTEL_EXPORTER_OTLP_PROTOCOL": HTTP})
    assert http.protocol == HTTP


def test_the_config_wins_and_builds_per_signal_http_urls() -> None:
    config = TelemetryConfig(
        exporter="otlp", protocol=HTTP, endpoint="collector:4318", headers="x-key=s3cret"
    )
    plan = plan_export(config, env={"OTEL_TRACES_EXPORTER": "console"})
    assert (plan.traces, plan.metrics) == (OTLP, OTLP)
    assert plan.traces_endpoint == "https://collector:4318/v1/traces"
    assert plan.metrics_endpoint == "https://collector:4318/v1/metrics"
    assert plan.headers == {"x-key": "s3cret"}
    grpc_plan = plan_export(TelemetryConfig(exporter="otlp", endpoint="c:4317", metrics=False))
    assert (grpc_plan.protocol, grpc_plan.traces_endpoint, grpc_plan.metrics) == (
        GRPC,
        "c:4317",
        NONE,
    )


def test_settings_travel_to_executors_through_the_environment() -> None:
    config = TelemetryConfig(
        exporter="otlp", endpoint="c:4317", insecure=True, span_delay_seconds=0.5
    )
    assert TelemetryConfig.from_env(config.to_env()) == config


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(TelemetryConfigError, match=r"telemetry\.exporter"):
        TelemetryConfig.from_mapping({"exporter": "zipkin"})
    with pytest.raises(TelemetryConfigError, match="unknown key 'endpont'"):
        TelemetryConfig.from_mapping({"endpont": "x"})
    toml = tmp_path / "node.toml"
    toml.write_text('[telemetry]\nlog_format = "yaml"\n')
    with pytest.raises(InvalidArgument):
        load_config(toml, env={})
    toml.write_text(
        '[telemetry]\nexporter = "otlp"\nendpoint = "127.0.0.1:4317"\nlog_format = "json"\n'
        "[alerts]\nevaluate_interval_seconds = 2.0\n"
        '[[alerts.rules]]\nkind = "error_rate"\nthreshold = 0.25\n'
        '[[alerts.webhooks]]\nurl = "https://hooks.example.com/k"\nrules = ["error_rate"]\n'
    )
    config = load_config(toml, env={})
    assert config.telemetry.exporter == "otlp" and config.telemetry.log_format == "json"
    assert config.alerts.rules[0].threshold == 0.25
    assert config.alerts.webhooks[0].wants("error_rate")


def log_line(formatter: logging.Formatter, **extra: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RunContextFilter())
    logger = logging.getLogger("kodosumi.test-logs")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("executor %s died", "x1", extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_name_the_run_and_its_trace() -> None:
    bind_run("e42", "ab" * 16)
    data = json.loads(log_line(JsonFormatter(), flow="hello"))
    assert data["message"] == "executor x1 died" and data["level"] == "WARNING"
    assert (data["execution_id"], data["trace_id"], data["flow"]) == ("e42", "ab" * 16, "hello")
    explicit = json.loads(log_line(JsonFormatter(), execution_id="e7", trace_id="cd" * 16))
    assert (explicit["execution_id"], explicit["trace_id"]) == ("e7", "cd" * 16)
    text = log_line(TextFormatter())
    assert text.rstrip().endswith(f"[execution=e42 trace={'ab' * 16}]")
    bind_run("", "")
    assert "[" not in log_line(TextFormatter())


def test_the_engine_turns_step_events_into_nested_spans_and_stamps_them() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent = traceparent_for_trace(trace_id)
    spec = ExecutionSpec("e1", "crew", "m:f", {}, traceparent=parent, node_id="n1")
    tracer = RunTracer(spec, provider.get_tracer("test"))

    def emit(**kind: object) -> event_pb2.Event:
        event = event_pb2.Event(time_unix_nano=1_000)
        for name, value in kind.items():
            getattr(event, name).CopyFrom(value)  # type: ignore[arg-type]
        tracer.observe(event)
        return event

    task = emit(task_step=event_pb2.TaskStep(step_id="t", phase=1, task_name="Research"))
    emit(llm_call=event_pb2.LlmCall(step_id="l", phase=1, model="m", parent_step_id="t"))
    usage = event_pb2.TokenUsage(prompt_tokens=5, completion_tokens=2)
    done = emit(llm_call=event_pb2.LlmCall(step_id="l", phase=2, model="m", usage=usage))
    emit(tool_call=event_pb2.ToolCall(step_id="x", phase=1, tool_name="t", parent_step_id="t"))
    emit(status_changed=event_pb2.StatusChanged(status=S.EXECUTION_STATUS_FAILED, reason="boom"))

    spans = {s.name: s for s in exporter.get_finished_spans()}
    run, llm = spans["execution crew"], spans["chat m"]
    assert f"{run.context.trace_id:032x}" == trace_id
    assert f"{run.parent.span_id:016x}" == parent.split("-")[2]  # the launch's span
    assert spans["task Research"].parent.span_id == run.context.span_id
    assert llm.parent.span_id == spans["task Research"].context.span_id
    assert llm.attributes["gen_ai.usage.input_tokens"] == 5
    assert spans["tool t"].attributes["kodosumi.step.unfinished"]  # ended with the run
    assert run.status.status_code.name == "ERROR"
    assert (
        task.trace_id == trace_id
        and task.span_id == f"{spans['task Research'].context.span_id:016x}"
    )
    assert done.span_id == f"{llm.context.span_id:016x}"
