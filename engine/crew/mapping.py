"""CrewAI events to typed kodosumi events.

`EventMapper` converts one execution's CrewAI events, in the order they were emitted, into
`AgentStep`, `TaskStep`, `LlmCall`, `ToolCall` and `FrameworkEvent` messages. It is used by
one thread at a time (the session's pump), so its bookkeeping needs no locks.

Step ids come from CrewAI itself: the bus pushes every "started" event on a per-context
scope stack and stamps the matching "completed"/"failed" event with `started_event_id`,
so a step's id is the `event_id` of its started event and its parent is the enclosing
scope's started event (`parent_event_id`). LLM calls are also paired by CrewAI's `call_id`.

CrewAI's agent executor is itself a Flow: the flow_started/flow_finished pair it emits
around every agent run repeats the AgentStep, so it is dropped, and steps inside it are
re-parented to the agent step. Environment-detection events are dropped as noise.
Everything else without a typed counterpart becomes a FrameworkEvent carrying the event's
JSON (long strings shortened).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.events import framework_event
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import event_pb2

FRAMEWORK = "crewai"
MAX_TEXT = 16_000  # characters of an output, result or error kept in a typed field
MAX_JSON_STRING = 2_000  # characters of a string kept inside FrameworkEvent data
MAX_JSON_ITEMS = 50
MAX_JSON_DEPTH = 6

STARTED = event_pb2.STEP_PHASE_STARTED
COMPLETED = event_pb2.STEP_PHASE_COMPLETED
FAILED = event_pb2.STEP_PHASE_FAILED
STREAMING = event_pb2.STEP_PHASE_STREAMING

_LINK_FIELDS = frozenset(
    {
        "event_id",
        "parent_event_id",
        "previous_event_id",
        "triggered_by_event_id",
        "started_event_id",
        "emission_sequence",
        "timestamp",
        "type",
        "fingerprint_metadata",
    }
)
_NOISE = frozenset({"default_env", "cc_env", "codex_env", "cursor_env"})
_EXECUTOR_SCOPE_STARTS = frozenset({"flow_started", "method_execution_started"})
_EXECUTOR_EVENTS = frozenset(
    {
        "flow_created",
        "flow_started",
        "flow_finished",
        "flow_failed",
        "flow_paused",
        "method_execution_started",
        "method_execution_finished",
        "method_execution_failed",
        "method_execution_paused",
        "flow_plot",
    }
)
_AGENT = {
    "agent_execution_started": STARTED,
    "agent_execution_completed": COMPLETED,
    "agent_execution_error": FAILED,
    "lite_agent_execution_started": STARTED,
    "lite_agent_execution_completed": COMPLETED,
    "lite_agent_execution_error": FAILED,
}
_TASK = {"task_started": STARTED, "task_completed": COMPLETED, "task_failed": FAILED}
_LLM = {
    "llm_call_started": STARTED,
    "llm_call_completed": COMPLETED,
    "llm_call_failed": FAILED,
    "llm_stream_chunk": STREAMING,
}
_TOOL = {
    "tool_usage_started": STARTED,
    "tool_usage_finished": COMPLETED,
    "tool_usage_error": FAILED,
}


def clip(text: Any, limit: int = MAX_TEXT) -> str:
    value = text if isinstance(text, str) else "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def task_title(task: Any, fallback: str = "") -> str:
    """A task's name, else the first line of its description."""
    if task is None:
        return fallback
    name = getattr(task, "name", None)
    if name:
        return str(name)
    description = str(getattr(task, "description", "") or fallback).strip()
    first = description.splitlines()[0] if description else ""
    return clip(first, 120)


def compact(value: Any, depth: int = 0) -> Any:
    """A JSON value small enough for an event: long strings and lists shortened."""
    if isinstance(value, str):
        return clip(value, MAX_JSON_STRING)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_JSON_DEPTH:
        return clip(json.dumps(value, default=str), MAX_JSON_STRING)
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): compact(v, depth + 1) for k, v in items[:MAX_JSON_ITEMS]}
        if len(items) > MAX_JSON_ITEMS:
            out["…"] = f"{len(items) - MAX_JSON_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [compact(v, depth + 1) for v in seq[:MAX_JSON_ITEMS]]
        if len(seq) > MAX_JSON_ITEMS:
            out_list.append(f"… {len(seq) - MAX_JSON_ITEMS} more")
        return out_list
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return compact(dump(mode="json"), depth + 1)
        except Exception:
            return clip(str(value), MAX_JSON_STRING)
    return clip(str(value), MAX_JSON_STRING)


def event_data(event: Any) -> dict[str, Any]:
    """The JSON of a CrewAI event (compacted); never raises."""
    try:
        data = event.to_json()
    except Exception:
        try:
            data = event.model_dump(mode="json", exclude={"agent", "task", "crew", "state"})
        except Exception:
            data = {"type": getattr(event, "type", type(event).__name__)}
    if not isinstance(data, dict):
        return {"value": compact(data)}
    # The links between events travel in the typed fields and `extra`; empty fields are noise.
    return {str(k): compact(v) for k, v in data.items() if v is not None and k not in _LINK_FIELDS}


def _millis(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds() * 1000)


def _chars(messages: Any) -> int:
    if messages is None:
        return 0
    if isinstance(messages, str):
        return len(messages)
    total = 0
    for message in messages if isinstance(messages, list) else [messages]:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, list):
            total += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
        elif content is not None:
            total += len(str(content))
    return total


def usage_numbers(usage: Any) -> dict[str, int]:
    """Token counts of a provider usage dict or a CrewAI UsageMetrics (unknown keys → 0)."""
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        dump = getattr(usage, "model_dump", None)
        usage = dump() if callable(dump) else {}
    try:
        from crewai.types.usage_metrics import UsageMetrics

        metrics = UsageMetrics.from_provider_dict(usage)
        if metrics is not None:
            usage = {**usage, **metrics.model_dump()}
    except Exception:  # an older or exotic usage shape: read the common keys directly
        pass

    def number(*keys: str) -> int:
        for key in keys:
            value = usage.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
        return 0

    prompt = number("prompt_tokens", "input_tokens")
    completion = number("completion_tokens", "output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": number("total_tokens") or prompt + completion,
        "cached_prompt_tokens": number("cached_prompt_tokens", "cached_tokens"),
        "successful_requests": number("successful_requests"),
    }


def fill_usage(target: event_pb2.TokenUsage, numbers: dict[str, int]) -> None:
    target.prompt_tokens = numbers.get("prompt_tokens", 0)
    target.completion_tokens = numbers.get("completion_tokens", 0)
    target.total_tokens = numbers.get("total_tokens", 0)
    target.cached_prompt_tokens = numbers.get("cached_prompt_tokens", 0)
    target.successful_requests = numbers.get("successful_requests", 0)


class EventMapper:
    """Converts the CrewAI events of one execution, in emission order."""

    def __init__(self) -> None:
        # Dropped scope starts → their parent, so that children re-parent past them.
        self._aliases: dict[str, str] = {}
        self._started_at: dict[str, datetime] = {}
        self._llm_steps: dict[str, str] = {}
        self.llm_usage = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cached_prompt_tokens": 0,
            "successful_requests": 0,
        }

    # -- ids -----------------------------------------------------------------------------------

    def _resolve(self, event_id: str | None) -> str:
        seen = 0
        while event_id and event_id in self._aliases and seen < 100:
            event_id = self._aliases[event_id]
            seen += 1
        return event_id or ""

    def _step(self, event: Any, phase: int) -> tuple[str, str, float]:
        """(step id, parent step id, duration ms) of a scope event."""
        parent = self._resolve(event.parent_event_id)
        if phase == STARTED:
            self._started_at[event.event_id] = event.timestamp
            return event.event_id, parent, 0.0
        step_id = event.started_event_id or event.event_id
        started = self._started_at.pop(step_id, None)
        return step_id, parent, _millis(started, event.timestamp)

    # -- conversion ----------------------------------------------------------------------------

    def convert(self, source: Any, event: Any) -> event_pb2.Event | None:
        kind = str(getattr(event, "type", "") or "")
        if kind in _NOISE:
            return None
        if kind in _EXECUTOR_EVENTS and _is_agent_executor(source):
            if kind in _EXECUTOR_SCOPE_STARTS:
                self._aliases[event.event_id] = self._resolve(event.parent_event_id)
            return None
        if kind in _AGENT:
            out = self._agent(event, _AGENT[kind])
        elif kind in _TASK:
            out = self._task(event, _TASK[kind])
        elif kind in _LLM:
            out = self._llm(event, _LLM[kind])
        elif kind in _TOOL:
            out = self._tool(event, _TOOL[kind])
        elif kind == "crew_kickoff_completed":
            # The event's output is the whole last TaskOutput; its text is what matters.
            output = getattr(event, "output", None)
            data = {
                "crew_name": getattr(event, "crew_name", None) or "",
                "output": clip(getattr(output, "raw", output), MAX_JSON_STRING),
                "total_tokens": getattr(event, "total_tokens", 0),
            }
            out = framework_event(FRAMEWORK, kind, data)
        else:
            out = framework_event(FRAMEWORK, kind or type(event).__name__, event_data(event))
        timestamp = getattr(event, "timestamp", None)
        if isinstance(timestamp, datetime):
            out.time_unix_nano = int(timestamp.timestamp() * 1_000_000_000)
        extra: dict[str, Any] = {"framework": FRAMEWORK, "type": kind}
        for name in ("event_id", "parent_event_id", "started_event_id", "emission_sequence"):
            value = getattr(event, name, None)
            if value is not None:
                extra[name] = value
        dict_to_struct(extra, out.extra)
        return out

    def _agent(self, event: Any, phase: int) -> event_pb2.Event:
        out = event_pb2.Event()
        step = out.agent_step
        step.step_id, step.parent_step_id, step.duration_ms = self._step(event, phase)
        step.phase = phase  # type: ignore[assignment]
        agent = getattr(event, "agent", None)
        info = getattr(event, "agent_info", None) or {}
        step.agent_role = str(
            getattr(agent, "role", None) or event.agent_role or info.get("role", "") or ""
        )
        step.task_name = task_title(getattr(event, "task", None), event.task_name or "")
        if phase == COMPLETED:
            step.output = clip(getattr(event, "output", ""))
        elif phase == FAILED:
            step.error = clip(getattr(event, "error", ""))
        return out

    def _task(self, event: Any, phase: int) -> event_pb2.Event:
        out = event_pb2.Event()
        step = out.task_step
        step.step_id, step.parent_step_id, step.duration_ms = self._step(event, phase)
        step.phase = phase  # type: ignore[assignment]
        task = getattr(event, "task", None)
        step.task_name = task_title(task, event.task_name or "")
        agent = getattr(task, "agent", None)
        step.agent_role = str(getattr(agent, "role", "") or event.agent_role or "")
        if phase == STARTED:
            step.description = clip(getattr(task, "description", "") or "", 4_000)
        elif phase == COMPLETED:
            output = getattr(event, "output", None)
            step.output = clip(getattr(output, "raw", output))
            step.agent_role = step.agent_role or str(getattr(output, "agent", "") or "")
        else:
            step.error = clip(getattr(event, "error", ""))
        return out

    def _llm(self, event: Any, phase: int) -> event_pb2.Event:
        out = event_pb2.Event()
        call = out.llm_call
        call.phase = phase  # type: ignore[assignment]
        call_id = str(getattr(event, "call_id", "") or "")
        if phase == STARTED:
            call.step_id, call.parent_step_id, _ = self._step(event, phase)
            if call_id:
                self._llm_steps[call_id] = call.step_id
            call.prompt_chars = _chars(getattr(event, "messages", None))
        elif phase == STREAMING:
            call.step_id = self._llm_steps.get(call_id) or self._resolve(event.parent_event_id)
            call.chunk = str(getattr(event, "chunk", "") or "")
        else:
            # call_id pairs a start and an end even when they were emitted in different
            # contexts (where CrewAI's scope stack cannot pair them).
            by_call = self._llm_steps.pop(call_id, None)
            call.step_id = event.started_event_id or by_call or event.event_id
            call.parent_step_id = self._resolve(event.parent_event_id)
            call.latency_ms = _millis(self._started_at.pop(call.step_id, None), event.timestamp)
            if phase == COMPLETED:
                response = getattr(event, "response", None)
                call.completion_chars = len(
                    response if isinstance(response, str) else json.dumps(response, default=str)
                )
                call.prompt_chars = _chars(getattr(event, "messages", None))
                numbers = usage_numbers(getattr(event, "usage", None))
                if numbers:
                    fill_usage(call.usage, numbers)
                    for key, value in numbers.items():
                        self.llm_usage[key] += value
                    if not numbers.get("successful_requests"):
                        self.llm_usage["successful_requests"] += 1
            else:
                call.error = clip(getattr(event, "error", ""))
        call.model = str(getattr(event, "model", "") or "")
        call.agent_role = str(event.agent_role or "")
        call.task_name = str(event.task_name or "")
        return out

    def _tool(self, event: Any, phase: int) -> event_pb2.Event:
        out = event_pb2.Event()
        call = out.tool_call
        call.step_id, call.parent_step_id, latency = self._step(event, phase)
        call.phase = phase  # type: ignore[assignment]
        call.tool_name = str(getattr(event, "tool_name", "") or "")
        args = getattr(event, "tool_args", None)
        call.arguments_json = clip(
            args if isinstance(args, str) else json.dumps(compact(args or {}), ensure_ascii=False)
        )
        call.agent_role = str(event.agent_role or "")
        if phase == COMPLETED:
            call.result = clip(getattr(event, "output", ""))
            started, finished = (
                getattr(event, "started_at", None),
                getattr(event, "finished_at", None),
            )
            call.latency_ms = _millis(started, finished) if started and finished else latency
        elif phase == FAILED:
            call.error = clip(getattr(event, "error", ""))
            call.latency_ms = latency
        return out


def _is_agent_executor(source: Any) -> bool:
    return type(source).__module__.startswith("crewai.agents")
