"""Metered usage as OpenTelemetry counters (`kodosumi.usage.*`, docs/market.md): what runs of
each flow used, counted as each attempt's usage is stored (kodosumid/executions/metering.py),
so the counters agree with `koco usage`.

A `UsageObserver` (kodosumid/executions/lifecycle.py): the drain path tells it of every stored
attempt, the engine's and the node's own zero records alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import metrics

from kodosumid.event_store import AttemptUsage, ExecutionRecord, StatusChange


class UsageMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self._runs = meter.create_counter(
            "kodosumi.usage.runs", unit="{run}", description="Runs metered, by flow"
        )
        self._attempts = meter.create_counter(
            "kodosumi.usage.attempts",
            unit="{attempt}",
            description="Attempts metered, by flow and who measured them (engine or node)",
        )
        self._wall = meter.create_counter(
            "kodosumi.usage.wall", unit="s", description="Wall-clock seconds of attempts, by flow"
        )
        self._cpu = meter.create_counter(
            "kodosumi.usage.cpu", unit="s", description="CPU seconds of the flows, by flow"
        )
        self._llm_calls = meter.create_counter(
            "kodosumi.usage.llm.calls", unit="{call}", description="LLM calls, by flow and model"
        )
        self._tokens = meter.create_counter(
            "kodosumi.usage.llm.tokens",
            unit="{token}",
            description="LLM tokens, by flow, model and direction (input, output)",
        )
        self._tool_calls = meter.create_counter(
            "kodosumi.usage.tool.calls", unit="{call}", description="Tool calls, by flow"
        )
        self._bytes = meter.create_counter(
            "kodosumi.usage.bytes",
            unit="By",
            description="Bytes of inputs, outputs and artifacts, by flow and kind",
        )

    def launched(self, record: ExecutionRecord) -> None:
        pass

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        pass

    def metered(self, record: ExecutionRecord, attempts: Sequence[AttemptUsage]) -> None:
        flow = {"flow": record.flow}
        for a in attempts:
            if a.attempt == 1:  # every run has exactly one first attempt record
                self._runs.add(1, flow)
            self._attempts.add(1, {**flow, "source": a.source})
            self._wall.add(a.wall_seconds, flow)
            self._cpu.add(a.cpu_seconds, flow)
            self._tool_calls.add(a.tool_calls, flow)
            for kind, size in (
                ("input", a.input_bytes),
                ("output", a.output_bytes),
                ("artifact", a.artifact_bytes),
            ):
                self._bytes.add(size, {**flow, "kind": kind})
            for m in a.models:
                model = {**flow, "model": m.model}
                self._llm_calls.add(m.calls, model)
                self._tokens.add(m.input_tokens, {**model, "direction": "input"})
                self._tokens.add(m.output_tokens, {**model, "direction": "output"})
