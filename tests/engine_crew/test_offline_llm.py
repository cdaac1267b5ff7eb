"""The offline model: deterministic ReAct replies, scripts, structured output, its events."""

from __future__ import annotations

import json
import threading
from typing import Any

from crewai.events import crewai_event_bus
from crewai.events.types.llm_events import LLMCallCompletedEvent, LLMCallStartedEvent
from pydantic import BaseModel

from engine.crew.llm import make_llm
from engine.crew.offline_llm import OfflineLLM

SYSTEM = (
    "You are Researcher. Careful.\nYour personal goal is: facts\n"
    "You ONLY have access to the following tools, and should NEVER make up tools that are "
    'not listed here:\n\nTool Name: lookup\nTool Arguments: {\n  "properties": {\n'
    '    "query": {\n      "title": "Query",\n      "type": "string"\n    }\n  },\n'
    '  "required": [\n    "query"\n  ]\n}\nTool Description: Look it up.\n'
)
TASK = "\nCurrent Task: Research owls.\n\nThis is the expected criteria for your final answer: x"


def conversation(*turns: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]
    for turn in turns:
        messages.append({"role": "assistant", "content": turn})
        messages.append({"role": "user", "content": "Continue."})
    return messages


def test_calls_its_tool_first_then_answers_with_the_observation() -> None:
    llm = OfflineLLM()
    first = llm.respond(conversation())
    assert first.splitlines()[1:] == ["Action: lookup", 'Action Input: {"query": "Research owls."}']
    second = llm.respond(conversation(first + "\nObservation: owls hoot"))
    assert second.startswith(
        "Thought: I now know the final answer\nFinal Answer: ## Research owls."
    )
    assert "Prepared by the Researcher." in second and "- owls hoot" in second
    assert llm.respond(conversation()) == first  # a pure function of the messages


def test_script_and_structured_output() -> None:
    llm = OfflineLLM(
        script={"owls": [{"tool": "lookup", "args": {"query": "owl"}}, {"final": "Hoo."}]}
    )
    assert 'Action Input: {"query": "owl"}' in llm.respond(conversation())
    assert llm.respond(conversation("Action: lookup\nObservation: x")).endswith(
        "Final Answer: Hoo."
    )

    class Reason(BaseModel):
        text: str
        weight: float

    class Verdict(BaseModel):
        outcome: str
        score: int
        reason: Reason
        tags: list[str]

    reply = llm.respond("Decide.", response_model=Verdict)
    assert Verdict.model_validate_json(reply).reason.weight == 1.0


def test_feedback_collapse_picks_the_outcome_the_human_named() -> None:
    from typing import Literal

    class Outcome(BaseModel):
        outcome: Literal["approved", "rejected"]

    prompt = (
        "Based on the following human feedback, determine which outcome best matches their "
        "intent.\n\nFeedback: rejected, too slow\n\nPossible outcomes: approved, rejected"
    )
    assert json.loads(OfflineLLM().respond(prompt, response_model=Outcome)) == {
        "outcome": "rejected"
    }


def test_emits_call_events_and_counts_tokens() -> None:
    seen: list[Any] = []
    done = threading.Event()

    with crewai_event_bus.scoped_handlers():

        @crewai_event_bus.on(LLMCallStartedEvent)
        def started(source: Any, event: Any) -> None:
            seen.append(event)

        @crewai_event_bus.on(LLMCallCompletedEvent)
        def completed(source: Any, event: Any) -> None:
            seen.append(event)
            done.set()

        llm = OfflineLLM()
        reply = llm.call("What is an owl?")
        assert done.wait(5)
    assert reply == "Offline answer: What is an owl?"
    assert {type(e) for e in seen} == {LLMCallStartedEvent, LLMCallCompletedEvent}
    assert seen[0].call_id == seen[1].call_id and seen[1].model == "offline/scripted"
    usage = seen[-1].usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert llm.get_token_usage_summary().total_tokens == usage["total_tokens"]


def test_model_names() -> None:
    assert isinstance(make_llm("offline/scripted"), OfflineLLM)
    assert isinstance(make_llm({"model": "offline/other", "latency_ms": 5}), OfflineLLM)
    assert make_llm(None).model == "offline/scripted"
