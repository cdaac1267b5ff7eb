"""Metered usage (kodosumid/executions/metering.py) as `kodosumi.v1` messages: the usage
service's answers, and whatever else carries a run's usage (receipts)."""

from __future__ import annotations

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from kodosumi.v1 import market_pb2, usage_pb2
from kodosumid.event_store import AttemptUsage, ModelUse, UsageRow, UsageTotals
from kodosumid.executions.metering import UsageRecord


def _models(
    target: RepeatedCompositeFieldContainer[market_pb2.ModelUsage], models: tuple[ModelUse, ...]
) -> None:
    for m in models:
        target.add(
            model=m.model, calls=m.calls, input_tokens=m.input_tokens, output_tokens=m.output_tokens
        )


def totals_message(totals: UsageTotals) -> usage_pb2.UsageTotals:
    message = usage_pb2.UsageTotals(
        runs=totals.runs,
        attempts=totals.attempts,
        wall_seconds=totals.wall_seconds,
        cpu_seconds=totals.cpu_seconds,
        llm_calls=totals.llm_calls,
        tool_calls=totals.tool_calls,
        input_bytes=totals.input_bytes,
        output_bytes=totals.output_bytes,
        artifact_bytes=totals.artifact_bytes,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
    )
    _models(message.models, totals.models)
    return message


def attempt_message(attempt: AttemptUsage) -> usage_pb2.AttemptUsageRecord:
    message = usage_pb2.AttemptUsageRecord(
        source=attempt.source,
        note=attempt.note,
        recorded_unix_nano=attempt.at_ns,
        node_id=attempt.node,
    )
    usage = message.usage
    usage.attempt = attempt.attempt
    usage.wall_seconds = attempt.wall_seconds
    usage.cpu_seconds = attempt.cpu_seconds
    usage.llm_calls = attempt.llm_calls
    usage.tool_calls = attempt.tool_calls
    usage.input_bytes = attempt.input_bytes
    usage.output_bytes = attempt.output_bytes
    usage.artifact_bytes = attempt.artifact_bytes
    _models(usage.models, attempt.models)
    return message


def record_message(record: UsageRecord) -> usage_pb2.GetExecutionUsageResponse:
    return usage_pb2.GetExecutionUsageResponse(
        execution_id=record.execution_id,
        attempts=[attempt_message(a) for a in record.attempts],
        own=totals_message(record.own),
        children=totals_message(record.children),
        total=totals_message(record.total),
    )


def row_message(row: UsageRow) -> usage_pb2.UsageSummaryRow:
    return usage_pb2.UsageSummaryRow(key=row.key, totals=totals_message(row.totals))
