"""What a follower knows about an execution after the events it has seen: `FollowState`,
and `apply`/`fold` that reduce events into it (status, progress, steps in flight, open input
requests, result, errors, LLM/tool counts and tokens). Pure: no clock, terminal or network,
so the CLI's live view and any SDK user share one reading of a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kodoclient.events import TERMINAL_STATUSES
from kodosumi.v1 import event_pb2

Event = event_pb2.Event


@dataclass
class FollowState:
    """What a follower knows about an execution after the events it has seen."""

    execution_id: str = ""
    flow: str = ""
    status: int = event_pb2.EXECUTION_STATUS_UNSPECIFIED
    reason: str = ""
    last_seq: int = 0
    first_ns: int = 0
    last_ns: int = 0
    progress: float | None = None
    progress_message: str = ""
    # step_id -> label of agents/tasks/LLM/tool calls started and not yet ended.
    active: dict[str, str] = field(default_factory=dict)
    open_inputs: dict[str, event_pb2.InputRequested] = field(default_factory=dict)
    result: event_pb2.Result | None = None
    errors: list[event_pb2.Error] = field(default_factory=list)
    llm_calls: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    children: list[event_pb2.ChildExecution] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def elapsed_seconds(self) -> float:
        return max(0, self.last_ns - self.first_ns) / 1e9


_STEP_LABELS: dict[str, Callable[[Event], tuple[str, int, str]]] = {
    "agent_step": lambda e: (
        e.agent_step.step_id,
        e.agent_step.phase,
        f"agent {e.agent_step.agent_role}",
    ),
    "task_step": lambda e: (
        e.task_step.step_id,
        e.task_step.phase,
        f"task {e.task_step.task_name}",
    ),
    "llm_call": lambda e: (e.llm_call.step_id, e.llm_call.phase, f"llm {e.llm_call.model}"),
    "tool_call": lambda e: (
        e.tool_call.step_id,
        e.tool_call.phase,
        f"tool {e.tool_call.tool_name}",
    ),
}
_ENDED = (event_pb2.STEP_PHASE_COMPLETED, event_pb2.STEP_PHASE_FAILED)


def apply(state: FollowState, event: Event) -> FollowState:
    """Fold one event into `state` (in place) and return it."""
    state.execution_id = state.execution_id or event.execution_id
    state.last_seq = max(state.last_seq, event.seq)
    if event.time_unix_nano:
        state.first_ns = state.first_ns or event.time_unix_nano
        state.last_ns = max(state.last_ns, event.time_unix_nano)
    kind = event.WhichOneof("kind")
    if kind == "status_changed":
        state.status = event.status_changed.status
        state.reason = event.status_changed.reason
        if state.terminal:
            state.active.clear()
            state.open_inputs.clear()
    elif kind == "progress":
        if event.progress.HasField("fraction"):
            state.progress = min(1.0, max(0.0, event.progress.fraction))
        state.progress_message = event.progress.message or state.progress_message
    elif kind in _STEP_LABELS:
        step_id, phase, label = _STEP_LABELS[kind](event)
        if phase == event_pb2.STEP_PHASE_STARTED and step_id:
            state.active[step_id] = label
        elif phase in _ENDED:
            state.active.pop(step_id, None)
            if kind == "llm_call":
                state.llm_calls += 1
                state.prompt_tokens += event.llm_call.usage.prompt_tokens
                state.completion_tokens += event.llm_call.usage.completion_tokens
            elif kind == "tool_call":
                state.tool_calls += 1
    elif kind == "input_requested":
        state.open_inputs[event.input_requested.request_id] = event.input_requested
    elif kind == "input_provided":
        state.open_inputs.pop(event.input_provided.request_id, None)
    elif kind == "result":
        state.result = event.result
    elif kind == "error":
        state.errors.append(event.error)
    elif kind == "child_execution":
        state.children.append(event.child_execution)
    return state


def fold(events: Iterable[Event], state: FollowState | None = None) -> FollowState:
    state = state if state is not None else FollowState()
    for event in events:
        apply(state, event)
    return state
