"""What a run used, folded from its stored events: the one reading the meter (while it runs)
and the receipt (once it ended) share, so both charge the same run the same way.

Run time is the execution's: from its first STARTING (or RUNNING) to its terminal status,
across attempts. Tokens are the finished LLM calls' as the LLM reported them, per model, so
a call that ran before a node stopped the run counts too. CPU time and bytes come from the
attempts' `Usage` events (an attempt the node stopped has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kodosumi.charges import Metered, TokenUse, billed_seconds
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2, market_pb2

_FINISHED = (event_pb2.STEP_PHASE_COMPLETED, event_pb2.STEP_PHASE_FAILED)
_STARTED = (event_pb2.EXECUTION_STATUS_STARTING, event_pb2.EXECUTION_STATUS_RUNNING)


@dataclass
class RunFold:
    start_ns: int = 0
    end_ns: int = 0
    attempts: int = 0
    status: int = 0
    reason: str = ""
    # model -> [calls, input tokens, output tokens]
    models: dict[str, list[int]] = field(default_factory=dict)
    tool_calls: int = 0
    cpu_seconds: float = 0.0
    input_bytes: int = 0
    output_bytes: int = 0
    artifact_bytes: int = 0

    def feed(self, event: event_pb2.Event) -> bool:
        """Fold one event; True when it changed what the run costs (tokens, its start)."""
        self.attempts = max(self.attempts, event.attempt)
        kind = event.WhichOneof("kind")
        if kind == "llm_call" and event.llm_call.phase in _FINISHED:
            call = event.llm_call
            model = self.models.setdefault(call.model, [0, 0, 0])
            model[0] += 1
            model[1] += call.usage.prompt_tokens
            model[2] += call.usage.completion_tokens
            return True
        if kind == "status_changed":
            status = event.status_changed.status
            self.status, self.reason = status, event.status_changed.reason
            if status in _STARTED and not self.start_ns:
                self.start_ns = event.time_unix_nano
                return True
            if status in TERMINAL:
                self.end_ns = event.time_unix_nano
        elif kind == "tool_call" and event.tool_call.phase in _FINISHED:
            self.tool_calls += 1
        elif kind == "usage":
            usage = event.usage
            self.cpu_seconds += usage.cpu_seconds
            self.input_bytes = max(self.input_bytes, usage.input_bytes)
            self.output_bytes += usage.output_bytes
            self.artifact_bytes += usage.artifact_bytes
        return False

    def seconds(self, now_ns: int = 0) -> Decimal:
        """Run time to the end, or to `now_ns` while it runs; 0 before it started."""
        if not self.start_ns:
            return Decimal(0)
        end = self.end_ns or now_ns or self.start_ns
        return billed_seconds(max(0, end - self.start_ns) / 1e9)

    def metered(self, now_ns: int = 0) -> Metered:
        return Metered(
            self.seconds(now_ns),
            tuple(TokenUse(m, c[1], c[2]) for m, c in sorted(self.models.items())),
        )

    def usage(self) -> market_pb2.Usage:
        """The run's usage summed over its attempts (`attempt`: how many there were)."""
        usage = market_pb2.Usage(
            attempt=self.attempts,
            wall_seconds=float(self.seconds()),
            cpu_seconds=self.cpu_seconds,
            tool_calls=self.tool_calls,
            input_bytes=self.input_bytes,
            output_bytes=self.output_bytes,
            artifact_bytes=self.artifact_bytes,
        )
        for name, (calls, tokens_in, tokens_out) in sorted(self.models.items()):
            usage.llm_calls += calls
            usage.models.add(
                model=name, calls=calls, input_tokens=tokens_in, output_tokens=tokens_out
            )
        return usage
