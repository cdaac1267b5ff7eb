"""Drive executions on an ExecutionHost (no Ray, no gRPC) and look at their events."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import capture
from engine.host import ExecutionHost
from kodosumi.jsonvalue import value_to_python
from kodosumi.v1 import event_pb2

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

TERMINAL = {
    event_pb2.EXECUTION_STATUS_SUCCEEDED,
    event_pb2.EXECUTION_STATUS_FAILED,
    event_pb2.EXECUTION_STATUS_CANCELLED,
    event_pb2.EXECUTION_STATUS_TIMED_OUT,
}


@dataclass
class Run:
    """The events of one execution, with helpers to look at them."""

    execution_id: str
    events: list[event_pb2.Event] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [str(e.WhichOneof("kind")) for e in self.events]

    @property
    def status(self) -> int:
        return int(self.events[-1].status_changed.status) if self.events else 0

    @property
    def finished(self) -> bool:
        return (
            bool(self.events)
            and self.events[-1].WhichOneof("kind") == "status_changed"
            and (self.events[-1].status_changed.status in TERMINAL)
        )

    def of(self, kind: str) -> list[Any]:
        return [getattr(e, kind) for e in self.events if e.WhichOneof("kind") == kind]

    def steps(self) -> list[tuple[str, int, str]]:
        """(kind, phase, name) of every typed step, in stream order."""
        out: list[tuple[str, int, str]] = []
        for e in self.events:
            kind = e.WhichOneof("kind")
            if kind == "task_step":
                out.append((kind, e.task_step.phase, e.task_step.task_name))
            elif kind == "agent_step":
                out.append((kind, e.agent_step.phase, e.agent_step.agent_role))
            elif kind == "llm_call" and e.llm_call.phase != event_pb2.STEP_PHASE_STREAMING:
                out.append((kind, e.llm_call.phase, e.llm_call.agent_role))
            elif kind == "tool_call":
                out.append((kind, e.tool_call.phase, e.tool_call.tool_name))
            elif kind == "framework_event":
                out.append((kind, 0, e.framework_event.type))
        return out

    def framework_types(self) -> list[str]:
        return [f.type for f in self.of("framework_event")]

    def output_text(self) -> str:
        return "\n".join(line.text for line in self.of("output_line"))

    @property
    def result(self) -> event_pb2.Result:
        results = self.of("result")
        assert results, f"no result; kinds: {self.kinds}"
        return results[-1]  # type: ignore[no-any-return]

    def result_json(self) -> Any:
        return value_to_python(self.result.json)


# answer(request) -> value for an input request, or None to leave it open
Answer = Callable[[event_pb2.InputRequested], Any]


def route_output() -> None:
    """Route stdout/stderr through the engine (again) for the running test.

    An executor installs the routing once per process; pytest, however, puts its own
    capture streams back into `sys.stdout`/`sys.stderr` at the start of every test phase
    (and restores them at its end), which would drop what flows print.
    """
    for name, stream in (
        ("stdout", event_pb2.OUTPUT_STREAM_STDOUT),
        ("stderr", event_pb2.OUTPUT_STREAM_STDERR),
    ):
        current = getattr(sys, name)
        if not isinstance(current, capture._RoutingStream):
            setattr(sys, name, capture._RoutingStream(current, stream))


class Driver:
    """Starts executions on one host and drains them until each ends (with a deadline)."""

    def __init__(self, host: ExecutionHost) -> None:
        self.host = host
        self._count = 0

    async def start(
        self,
        entrypoint: str,
        inputs: dict[str, Any] | None = None,
        **spec: Any,
    ) -> str:
        route_output()
        self._count += 1
        execution_id = str(spec.pop("execution_id", f"crew-{self._count}-{time.monotonic_ns()}"))
        await self.host.start(
            {
                "execution_id": execution_id,
                "flow": spec.pop("flow", "test"),
                "entrypoint": entrypoint,
                "inputs": inputs or {},
                "python_path": [str(REPO), str(HERE)],
                **spec,
            }
        )
        return execution_id

    async def follow(
        self,
        execution_ids: list[str],
        *,
        answer: Answer | None = None,
        on_event: Callable[[str, event_pb2.Event], Awaitable[None]] | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Run]:
        runs = {eid: Run(eid) for eid in execution_ids}
        acks: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while not all(run.finished for run in runs.values()):
            assert time.monotonic() < deadline, {
                eid: run.kinds[-5:] for eid, run in runs.items() if not run.finished
            }
            batch, _ = await self.host.drain(acks, wait_seconds=0.5)
            for eid, raws in batch.items():
                for raw in raws:
                    event = event_pb2.Event.FromString(raw)
                    acks[eid] = event.seq
                    if eid not in runs:
                        continue
                    runs[eid].events.append(event)
                    if on_event is not None:
                        await on_event(eid, event)
                    if answer is not None and event.WhichOneof("kind") == "input_requested":
                        value = answer(event.input_requested)
                        await self.host.provide_input(
                            eid, event.input_requested.request_id, value, "tester"
                        )
        await self.host.drain(acks, wait_seconds=0)  # acknowledge the terminal events
        return runs

    async def run(
        self, entrypoint: str, inputs: dict[str, Any] | None = None, **options: Any
    ) -> Run:
        answer = options.pop("answer", None)
        timeout = options.pop("timeout", 60.0)
        execution_id = await self.start(entrypoint, inputs, **options)
        return (await self.follow([execution_id], answer=answer, timeout=timeout))[execution_id]
