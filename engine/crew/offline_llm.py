"""A deterministic LLM that needs no key and no network, for the examples and the tests.

`OfflineLLM` is a `crewai.llms.base_llm.BaseLLM`, so CrewAI drives it exactly like a real
model: agents talk to it in CrewAI's ReAct text format (`Action:` / `Action Input:` /
`Final Answer:`), it answers structured-output requests with JSON for the requested model,
and it emits the LLM call started/completed (and stream chunk) events itself, as every
custom BaseLLM must, so the engine sees its calls like any provider's.

Its answers are a pure function of the messages (no hidden per-instance state), so one
instance can serve several executions at once and every run gives the same event sequence:

- an agent that has tools first calls one (`tool_rounds` calls, cycling through its
  tools; arguments come from the tool's JSON schema and the task text), then answers;
  a manager (hierarchical process) delegates to its first coworker;
- the final answer quotes the task, the tool observations and the context it was given,
  and takes human feedback (`User feedback: ...`) into account;
- a `script` maps a regular expression (searched in the task text) to the replies of
  successive rounds, for tests that need exact control.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from crewai.events.types.llm_events import LLMCallType
from crewai.llms.base_llm import BaseLLM, llm_call_context
from pydantic import BaseModel, Field

from engine.crew.llm import OFFLINE_MODEL

# A scripted reply: plain text (returned as is, e.g. "Final Answer: ..."),
# {"tool": name, "args": {...}} for a tool call, {"final": text} for a final answer,
# or {"error": message} for a call that fails.
ScriptStep = str | dict[str, Any]

_TOOL_BLOCK = re.compile(
    r"Tool Name: (?P<name>[^\n]+)\nTool Arguments: (?P<args>\{.*?\n\})\n"
    r"Tool Description: (?P<description>[^\n]*)",
    re.DOTALL,
)
_CURRENT_TASK = re.compile(r"Current Task: (?P<task>.*?)(?:\n\n|\Z)", re.DOTALL)
_CONTEXT = re.compile(
    r"This is the context you're working with:\n(?P<context>.*?)(?:\n\n(?:Provide|Begin)|\Z)",
    re.DOTALL,
)
_ACTION = re.compile(r"(?:^|\n)Action:")
_ROLE = re.compile(r"^You are (?P<role>[^.\n]+)")
_FEEDBACK = re.compile(r"User feedback: (?P<feedback>.*?)(?:\nInstructions:|\Z)", re.DOTALL)
_COLLAPSE_FEEDBACK = re.compile(r"\bFeedback: (?P<feedback>.*?)(?:\n\n|\Z)", re.DOTALL)
_COWORKERS = re.compile(r"coworkers?: (?P<names>[^\n]+?)(?:\n|$|The input)", re.IGNORECASE)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _messages(messages: Any) -> list[dict[str, str]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [
        {"role": str(m.get("role", "user")), "content": _text(m.get("content"))}
        for m in messages or []
        if isinstance(m, dict)
    ]


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def count_tokens(text: str) -> int:
    """The offline model's tokenizer: one token per four characters, rounded up."""
    return (len(text) + 3) // 4


class OfflineLLM(BaseLLM):
    """Scripted, deterministic, offline. Select it with the model name `offline/scripted`."""

    llm_type: str = "offline"
    provider: str = "offline"
    script: dict[str, list[ScriptStep]] = Field(default_factory=dict)
    # How many tool calls an agent with tools makes before it answers.
    tool_rounds: int = 1
    # Simulated latency of each call, to make concurrency visible in demos.
    latency_ms: float = 0.0
    # Characters per stream chunk when streaming is on.
    chunk_chars: int = 24

    def __init__(self, model: str = OFFLINE_MODEL, **data: Any) -> None:
        super().__init__(model=model, **data)

    # -- BaseLLM interface ---------------------------------------------------------------------

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: type[BaseModel] | None = None,
    ) -> str:
        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            try:
                reply = self.respond(messages, response_model, from_agent)
                if self.latency_ms > 0:
                    time.sleep(self.latency_ms / 1000)
                response_id = uuid.uuid4().hex
                if self._effective_stream():
                    for start in range(0, len(reply), max(1, self.chunk_chars)):
                        self._emit_stream_chunk_event(
                            reply[start : start + self.chunk_chars],
                            from_task=from_task,
                            from_agent=from_agent,
                            call_type=LLMCallType.LLM_CALL,
                            response_id=response_id,
                        )
            except Exception as exc:
                self._emit_call_failed_event(str(exc), from_task=from_task, from_agent=from_agent)
                raise
            prompt_tokens = sum(count_tokens(m["content"]) for m in _messages(messages))
            completion_tokens = count_tokens(reply)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            # Feeds the per-LLM totals that CrewOutput.token_usage is computed from.
            self._track_token_usage_internal(usage)
            self._emit_call_completed_event(
                response=reply,
                call_type=LLMCallType.LLM_CALL,
                from_task=from_task,
                from_agent=from_agent,
                messages=messages,
                usage=usage,
                finish_reason="stop",
                response_id=response_id,
            )
            return reply

    async def acall(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: type[BaseModel] | None = None,
    ) -> str:
        # Answers are computed, not fetched: nothing here would yield to the loop anyway.
        return self.call(
            messages, tools, callbacks, available_functions, from_task, from_agent, response_model
        )

    def supports_function_calling(self) -> bool:
        # The ReAct text protocol keeps every tool call visible in the prompt and answer.
        return False

    def supports_stop_words(self) -> bool:
        return True

    def get_context_window_size(self) -> int:
        return 128_000

    def get_input_tokens_count(
        self, messages: Any, tools: Any = None, response_model: Any = None
    ) -> int:
        # Exact for this model (BaseLLM's fallback logs a warning on every call).
        return sum(count_tokens(m["content"]) for m in _messages(messages))

    # -- the answers ---------------------------------------------------------------------------

    def respond(
        self,
        messages: Any,
        response_model: type[BaseModel] | None = None,
        agent: Any = None,
    ) -> str:
        """The reply to `messages`: a pure function of them (and of the script)."""
        conversation = _messages(messages)
        if response_model is not None:
            prompt = "\n".join(m["content"] for m in conversation)
            return json.dumps(_fill_schema(response_model.model_json_schema(), prompt))
        system = next((m["content"] for m in conversation if m["role"] == "system"), "")
        users = [m["content"] for m in conversation if m["role"] == "user"]
        first_user = users[0] if users else ""
        task_match = _CURRENT_TASK.search(first_user)
        task = task_match.group("task").strip() if task_match else first_user.strip()
        tools = [
            (m.group("name").strip(), m.group("args"), m.group("description"))
            for m in _TOOL_BLOCK.finditer(system + "\n" + first_user)
        ]
        # Every earlier tool call of this agent is an assistant turn naming an action.
        rounds = sum(
            1 for m in conversation if m["role"] == "assistant" and _ACTION.search(m["content"])
        )
        feedback = (
            [f.group("feedback").strip() for f in _FEEDBACK.finditer(users[-1])]
            if (len(users) > 1)
            else []
        )

        scripted = self._scripted(task, rounds)
        if scripted is not None:
            return scripted
        if tools and rounds < self.tool_rounds and not feedback:
            # A manager (hierarchical process) delegates before it does anything itself.
            tools.sort(key=lambda t: not t[0].lower().startswith("delegate"))
            name, args_text, description = tools[rounds % len(tools)]
            args = _tool_arguments(args_text, description, task, system)
            if rounds >= len(tools):
                # Another round with the same tool asks something new: CrewAI stops
                # agents that repeat a call with the same arguments.
                args = {
                    k: f"{v} (round {rounds + 1})" if isinstance(v, str) else v
                    for k, v in args.items()
                }
            return (
                f"Thought: I should use {name} to gather what the task needs.\n"
                f"Action: {name}\nAction Input: {json.dumps(args)}"
            )
        if not task_match and not tools:
            # A direct call (a flow step asking the model something): a plain answer.
            return f"Offline answer: {_first_line(users[-1] if users else '', 400)}"
        role_match = _ROLE.search(system)
        role = role_match.group("role").strip() if role_match else getattr(agent, "role", "")
        # CrewAI appends each tool result to the assistant turn that asked for it.
        observations = [
            m["content"].split("Observation:", 1)[-1].strip()
            for m in conversation
            if m["role"] != "system" and "Observation:" in m["content"] and m is not conversation[0]
        ]
        context_match = _CONTEXT.search(first_user)
        answer = _compose(role, task, observations, context_match, feedback)
        return f"Thought: I now know the final answer\nFinal Answer: {answer}"

    def _scripted(self, task: str, rounds: int) -> str | None:
        for pattern, steps in self.script.items():
            if steps and re.search(pattern, task):
                step = steps[min(rounds, len(steps) - 1)]
                if isinstance(step, str):
                    return step
                if "error" in step:  # a failing model call, for tests of error paths
                    raise RuntimeError(str(step["error"]))
                if "tool" in step:
                    return (
                        f"Thought: I will use {step['tool']}.\nAction: {step['tool']}\n"
                        f"Action Input: {json.dumps(step.get('args', {}))}"
                    )
                return (
                    f"Thought: I now know the final answer\nFinal Answer: {step.get('final', '')}"
                )
        return None


def _compose(
    role: str,
    task: str,
    observations: list[str],
    context: re.Match[str] | None,
    feedback: list[str],
) -> str:
    lines = [f"## {_first_line(task, 80)}", ""]
    if role:
        lines.append(f"Prepared by the {role}.")
    if observations:
        lines += ["", "Findings:"]
        lines += [f"- {_first_line(o, 200)}" for o in observations]
    if context is not None:
        lines += ["", "Building on:"]
        lines += [
            f"> {_first_line(c, 200)}"
            for c in context.group("context").strip().splitlines()
            if c.strip() and not c.startswith("#")
        ][:3]
    for item in feedback:
        if item:
            lines += ["", f"Revised after feedback: {item}"]
    return "\n".join(lines).strip()


def _tool_arguments(args_text: str, description: str, task: str, system: str) -> dict[str, Any]:
    try:
        schema = json.loads(args_text)
    except ValueError:
        return {}
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    coworkers = _COWORKERS.search(description) or _COWORKERS.search(system)
    args: dict[str, Any] = {}
    for name, prop in properties.items():
        if name == "coworker" and coworkers:
            args[name] = coworkers.group("names").split(",")[0].strip().strip(".")
        else:
            args[name] = _fill_schema(prop, task, name)
    return args


def _fill_schema(
    schema: dict[str, Any], prompt: str, name: str = "", root: dict[str, Any] | None = None
) -> Any:
    """A deterministic value for a JSON schema: enums pick the option the prompt names."""
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    if "const" in schema:
        return schema["const"]
    options = schema.get("enum")
    if options:
        feedback = _COLLAPSE_FEEDBACK.search(prompt) or _FEEDBACK.search(prompt)
        haystack = (feedback.group("feedback") if feedback else prompt).lower()
        # The prompt usually lists every option; the earliest mention in the
        # human's own words is the one they meant.
        found = sorted(
            (haystack.find(str(o).lower()), i)
            for i, o in enumerate(options)
            if str(o).lower() in haystack
        )
        return options[found[0][1]] if found else options[0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {k: _fill_schema(v, prompt, k, root) for k, v in properties.items()}
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            return _fill_schema(variant, prompt, name, root)
    return _first_line(prompt, 200)
