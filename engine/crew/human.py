"""CrewAI's human input, routed to the execution's `ctx.request_input`.

crewai 1.15.30 asks humans in three places, each with its own hook:

- a Task with `human_input=True`: after the agent's final answer the agent executor calls
  `get_provider().handle_feedback(answer, executor)` (`crewai.core.providers.human_input`).
  The provider lives in a ContextVar, so each execution sets its own for its kickoff: it
  asks for feedback on the answer, re-runs the agent with it, and asks again until the
  reply is empty (the console provider's loop, with `input()` replaced).
- a Flow method decorated with `@human_feedback`: the flow calls
  `flow_config.hitl_provider.request_feedback(context, flow)` in a worker thread (with the
  flow's context copied).
- `Flow.ask(message)`: the flow calls `flow_config.input_provider.request_input(...)`.

`flow_config` is process-wide, so the Flow providers are installed once and look up the
execution of the calling context (or of the flow object) on each call; a flow running
outside any execution in this process gets CrewAI's console behaviour as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crewai.core.providers.human_input import (
    SyncHumanInputProvider,
    reset_provider,
    set_provider,
)

if TYPE_CHECKING:
    from engine.crew.session import CrewSession

FEEDBACK_SCHEMA: dict[str, Any] = {
    "type": "string",
    "title": "Feedback",
    "description": "What to change; leave empty to accept the answer as it is.",
}

Lookup = Callable[[], "CrewSession | None"]


def _render(value: Any, limit: int = 8_000) -> str:
    if isinstance(value, str):
        text = value
    else:
        dump = getattr(value, "model_dump", None)
        try:
            data = dump(mode="json") if callable(dump) else value
            text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TaskHumanInput(SyncHumanInputProvider):
    """Human feedback on a task's answer, asked through the execution's ctx."""

    def __init__(self, session: CrewSession) -> None:
        self._session = session

    def ask(self, answer: Any, context: Any) -> str:
        task = getattr(context, "task", None)
        agent = getattr(context, "agent", None)
        title = getattr(task, "name", None) or str(getattr(task, "description", "")).strip()
        title = title.splitlines()[0] if title else "the task"
        output = getattr(answer, "output", answer)
        prompt = (
            f"Review the answer of {getattr(agent, 'role', 'the agent')} for {title!r}. "
            "Reply with feedback to have it revised, or with an empty reply to accept it."
            f"\n\n{_render(output)}"
        )
        self._session.flush()
        value = self._session.ctx.request_input(prompt, kind="text", schema=FEEDBACK_SCHEMA)
        return "" if value is None else str(value)

    def handle_feedback(self, formatted_answer: Any, context: Any) -> Any:
        if context._is_training_mode():
            return super().handle_feedback(formatted_answer, context)
        answer = formatted_answer
        while context.ask_for_human_input:
            feedback = self.ask(answer, context)
            if not feedback.strip():
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = context._invoke_loop()
        return answer

    async def handle_feedback_async(self, formatted_answer: Any, context: Any) -> Any:
        if context._is_training_mode():
            return await super().handle_feedback_async(formatted_answer, context)
        answer = formatted_answer
        while context.ask_for_human_input:
            feedback = await asyncio.to_thread(self.ask, answer, context)
            if not feedback.strip():
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = await context._ainvoke_loop()
        return answer

    # Training mode (crew.train) prompts through these two; route them to ctx as well.
    def _prompt_input(self, crew: Any) -> str:  # type: ignore[override]
        return self.ask("", None)

    async def _prompt_input_async(self, crew: Any) -> str:  # type: ignore[override]
        return await asyncio.to_thread(self.ask, "", None)


def set_task_provider(session: CrewSession) -> contextvars.Token[Any]:
    return set_provider(TaskHumanInput(session))


def reset_task_provider(token: contextvars.Token[Any]) -> None:
    reset_provider(token)


class FlowFeedbackProvider:
    """`flow_config.hitl_provider`: `@human_feedback` of a flow run by an execution."""

    def __init__(self, lookup: Lookup, fallback: Any) -> None:
        self._lookup = lookup
        self._fallback = fallback

    def request_feedback(self, context: Any, flow: Any) -> str:
        session = _session_of(self._lookup, flow)
        if session is None:
            return str(self._fallback.request_feedback(context, flow))
        emit = list(getattr(context, "emit", None) or [])
        prompt = f"{context.message}\n\n{_render(context.method_output)}"
        schema = dict(FEEDBACK_SCHEMA)
        if emit:
            prompt += f"\n\n(Your feedback decides between: {', '.join(emit)}.)"
            schema["examples"] = emit
        session.flush()
        value = session.ctx.request_input(prompt, kind="text", schema=schema)
        return "" if value is None else str(value)


class FlowInputProvider:
    """`flow_config.input_provider`: `Flow.ask()` of a flow run by an execution."""

    def __init__(self, lookup: Lookup, fallback: Any) -> None:
        self._lookup = lookup
        self._fallback = fallback

    def request_input(self, message: str, flow: Any, metadata: dict[str, Any] | None = None) -> Any:
        session = _session_of(self._lookup, flow)
        if session is None:
            return self._fallback.request_input(message, flow, metadata)
        session.flush()
        value = session.ctx.request_input(
            message, kind="text", schema={"type": "string", "title": "Answer"}
        )
        return "" if value is None else str(value)


def _session_of(lookup: Lookup, flow: Any) -> CrewSession | None:
    session = lookup()
    if session is None:
        from engine.crew.listener import registry

        flow_id = getattr(flow, "flow_id", None)
        session = registry.by_identity([f"flow:{flow_id}"]) if flow_id else None
    return session


def install_flow_providers(lookup: Lookup) -> None:
    """Install the process-wide Flow providers, keeping any configured ones as fallback."""
    from crewai.flow.async_feedback.providers import ConsoleProvider
    from crewai.flow.flow_config import flow_config

    console = ConsoleProvider()
    flow_config.hitl_provider = FlowFeedbackProvider(lookup, flow_config.hitl_provider or console)
    flow_config.input_provider = FlowInputProvider(lookup, flow_config.input_provider or console)
