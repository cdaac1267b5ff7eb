"""A run as a timeline: its agents, tasks, LLM calls, tool calls and input waits as bars with
start, end, nesting and token counts, rebuilt from the execution's stored events.

Steps pair up by `step_id` (STARTED with COMPLETED or FAILED) and nest by `parent_step_id`,
as the engine reports them; a step whose end never came is drawn up to the end of the run
and marked unfinished. `kodoclient timeline` draws this in the terminal and as SVG.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kodosumi.statuses import TERMINAL, status_word
from kodosumi.v1 import event_pb2

STARTED = event_pb2.STEP_PHASE_STARTED
COMPLETED = event_pb2.STEP_PHASE_COMPLETED
FAILED = event_pb2.STEP_PHASE_FAILED
EXECUTION_STEP = "execution"


@dataclass
class Bar:
    step_id: str
    kind: str  # execution, task, agent, llm, tool, input
    label: str
    start_ns: int
    end_ns: int = 0
    parent_id: str = ""
    # ok, failed, running (the run goes on), unfinished (the run ended without its end)
    state: str = "running"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: str = ""
    depth: int = 0
    children: list[Bar] = field(default_factory=list)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns) if self.end_ns else 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def record(self, origin_ns: int) -> dict[str, Any]:
        """As JSON (times in seconds from the start of the run)."""
        return {
            "step_id": self.step_id,
            "kind": self.kind,
            "label": self.label,
            "parent_id": self.parent_id,
            "depth": self.depth,
            "state": self.state,
            "start_s": round((self.start_ns - origin_ns) / 1e9, 6),
            "end_s": round((self.end_ns - origin_ns) / 1e9, 6) if self.end_ns else None,
            "duration_s": round(self.duration_ns / 1e9, 6),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "detail": self.detail,
        }


@dataclass
class Timeline:
    execution_id: str
    flow: str
    status: str
    start_ns: int
    end_ns: int
    # Depth-first: each bar is followed by its children, by start time.
    bars: list[Bar]
    attempts: int = 1

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def prompt_tokens(self) -> int:
        return sum(b.prompt_tokens for b in self.bars if b.kind == "llm")

    @property
    def completion_tokens(self) -> int:
        return sum(b.completion_tokens for b in self.bars if b.kind == "llm")

    def count(self, kind: str) -> int:
        return sum(1 for b in self.bars if b.kind == kind)

    def counts_text(self) -> str:
        """`2 tasks, 1 agent run, 1 LLM call, 0 tool calls`."""
        return ", ".join(
            plural(self.count(kind), noun)
            for kind, noun in (
                ("task", "task"),
                ("agent", "agent run"),
                ("llm", "LLM call"),
                ("tool", "tool call"),
            )
        )


def plural(count: int, noun: str) -> str:
    """`1 tool call`, `2 tool calls`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _status_name(status: int) -> str:
    return status_word(status, unknown=str(status))


def _step(event: event_pb2.Event) -> tuple[str, str, int, str, str, str] | None:
    """(kind, step id, phase, parent id, label, detail) of a step event."""
    which = event.WhichOneof("kind")
    if which == "agent_step":
        a = event.agent_step
        return "agent", a.step_id, a.phase, a.parent_step_id, a.agent_role or "agent", a.task_name
    if which == "task_step":
        t = event.task_step
        return "task", t.step_id, t.phase, t.parent_step_id, t.task_name or "task", t.agent_role
    if which == "llm_call":
        c = event.llm_call
        return "llm", c.step_id, c.phase, c.parent_step_id, c.model or "llm", c.agent_role
    if which == "tool_call":
        c2 = event.tool_call
        return "tool", c2.step_id, c2.phase, c2.parent_step_id, c2.tool_name or "tool", ""
    return None


def _duration_ms(event: event_pb2.Event) -> float:
    which = event.WhichOneof("kind")
    if which == "agent_step":
        return event.agent_step.duration_ms
    if which == "task_step":
        return event.task_step.duration_ms
    if which == "llm_call":
        return event.llm_call.latency_ms
    if which == "tool_call":
        return event.tool_call.latency_ms
    return 0.0


def build_timeline(
    events: Iterable[event_pb2.Event], execution_id: str = "", flow: str = ""
) -> Timeline:
    ordered = sorted(events, key=lambda e: e.seq)
    bars: dict[str, Bar] = {}
    first_ns = last_ns = 0
    run_start = run_end = 0
    status = "PENDING"
    attempts = 1
    for event in ordered:
        at = event.time_unix_nano
        if at:
            first_ns = at if not first_ns else min(first_ns, at)
            last_ns = max(last_ns, at)
        execution_id = execution_id or event.execution_id
        attempts = max(attempts, event.attempt or 1)
        which = event.WhichOneof("kind")
        if which == "status_changed":
            status = _status_name(event.status_changed.status)
            if event.status_changed.status in (
                event_pb2.EXECUTION_STATUS_STARTING,
                event_pb2.EXECUTION_STATUS_RUNNING,
            ):
                run_start = run_start or at
            if event.status_changed.status in TERMINAL:
                run_end = at
            continue
        if which == "input_requested":
            request = event.input_requested
            bars[f"input:{request.request_id}"] = Bar(
                f"input:{request.request_id}", "input", "awaiting input", at,
                detail=request.prompt[:80],
            )  # fmt: skip
            continue
        if which == "input_provided":
            bar = bars.get(f"input:{event.input_provided.request_id}")
            if bar is not None:
                bar.end_ns, bar.state = at, "ok"
                if event.input_provided.timed_out:
                    bar.detail = "timed out: default used"
            continue
        step = _step(event)
        if step is None or not step[1]:
            continue
        kind, step_id, phase, parent_id, label, detail = step
        bar = bars.get(step_id)
        if phase == STARTED:
            if bar is None:
                bars[step_id] = Bar(step_id, kind, label, at, parent_id=parent_id, detail=detail)
            continue
        if phase not in (COMPLETED, FAILED):
            continue  # streamed chunks
        if bar is None:  # the start was not reported: place it by the step's duration
            start = at - int(_duration_ms(event) * 1e6)
            bar = bars[step_id] = Bar(step_id, kind, label, start, parent_id=parent_id)
        bar.end_ns = at
        bar.state = "failed" if phase == FAILED else "ok"
        bar.parent_id = bar.parent_id or parent_id
        if kind == "llm":
            usage = event.llm_call.usage
            bar.prompt_tokens, bar.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            bar.label = event.llm_call.model or bar.label
        if not bar.detail and detail:
            bar.detail = detail
    start = run_start or first_ns
    end = run_end or last_ns
    finished = bool(run_end)
    for bar in bars.values():
        if not bar.end_ns and finished:
            bar.end_ns, bar.state = end, "unfinished"
    root = Bar(
        EXECUTION_STEP,
        "execution",
        flow or "execution",
        start,
        end if finished else 0,
        state=_state_of(status) if finished else "running",
        detail=status,
    )
    return Timeline(
        execution_id=execution_id,
        flow=flow,
        status=status,
        start_ns=start,
        end_ns=end,
        bars=_tree(root, bars),
        attempts=attempts,
    )


def _state_of(status: str) -> str:
    return (
        "ok"
        if status == "SUCCEEDED"
        else "failed"
        if status in ("FAILED", "TIMED_OUT")
        else status.lower()
    )


def _tree(root: Bar, bars: dict[str, Bar]) -> list[Bar]:
    for bar in bars.values():
        parent = bars.get(bar.parent_id, root) if bar.parent_id != bar.step_id else root
        parent.children.append(bar)
        # The bar it is drawn under (a step's parent may be no bar: a crew's own id).
        bar.parent_id = parent.step_id
    out: list[Bar] = []

    def walk(bar: Bar, depth: int, seen: set[str]) -> None:
        if bar.step_id in seen:  # a cycle in bad data: draw it once
            return
        seen.add(bar.step_id)
        bar.depth = depth
        out.append(bar)
        for child in sorted(bar.children, key=lambda b: (b.start_ns, b.step_id)):
            walk(child, depth + 1, seen)

    walk(root, 0, set())
    # Steps only reachable through a cycle were never walked: put them under the run.
    drawn = {b.step_id for b in out}
    for bar in bars.values():
        if bar.step_id not in drawn:
            bar.depth, bar.parent_id = 1, root.step_id
            out.append(bar)
    return out
