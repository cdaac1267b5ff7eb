"""The example flows a node offers when it has no catalog of its own.

`EXAMPLES` is plain data: importing this module imports neither crewai nor the flows
(the YAML spec is listed through `kodosumi.crew_spec_meta`: PyYAML only, not the engine).
Every entry has `name`, `entrypoint`, `description`, `tags`, `version`, `input_schema`
(JSON Schema of the launch inputs) and `timeout_seconds`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kodosumi.crew_spec_meta import catalog_entry

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SEARCH_SPEC = ASSETS / "search.yaml"

_TOPIC = {
    "type": "string",
    "title": "Topic",
    "description": "What to research (the offline knowledge base knows kodosumi, ray, "
    "crewai, grpc, streaming and agents).",
    "default": "kodosumi",
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


EXAMPLES: list[dict[str, Any]] = [
    {
        "name": "hello",
        "entrypoint": "flows.basic:hello",
        "description": "Greets someone: prints a line, logs and reports progress.",
        "tags": ["python", "example", "fast"],
        "version": "1",
        "input_schema": _object({"name": {"type": "string", "default": "world"}}),
        "timeout_seconds": 60,
    },
    {
        "name": "hello-async",
        "entrypoint": "flows.basic:hello_async",
        "description": "The async greeting: awaits between two steps, returns markdown.",
        "tags": ["python", "async", "example", "fast"],
        "version": "1",
        "input_schema": _object(
            {
                "name": {"type": "string", "default": "world"},
                "delay": {"type": "number", "minimum": 0, "maximum": 10, "default": 0.1},
            }
        ),
        "timeout_seconds": 60,
    },
    {
        "name": "countdown",
        "entrypoint": "flows.basic:countdown",
        "description": "A generator flow: each value it yields is a progress event.",
        "tags": ["python", "generator", "example", "fast"],
        "version": "1",
        "input_schema": _object(
            {
                "steps": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 5},
                "pause": {"type": "number", "minimum": 0, "maximum": 5, "default": 0.05},
            }
        ),
        "timeout_seconds": 120,
    },
    {
        "name": "approval",
        "entrypoint": "flows.basic:approval",
        "description": "Asks a human to approve a purchase (a form input request).",
        "tags": ["python", "human-input", "example"],
        "version": "1",
        "input_schema": _object(
            {
                "item": {"type": "string", "default": "a new laptop"},
                "amount": {"type": "number", "minimum": 0, "default": 1200.0},
            }
        ),
        "timeout_seconds": 3600,
    },
    {
        "name": "summarize-file",
        "entrypoint": "flows.documents:summarize_file",
        "description": "Takes a file and writes one: summarizes the input file `document` "
        "(text, markdown, CSV) into summary.md (koco run summarize-file -f document=@notes.md).",
        "tags": ["python", "files", "example", "fast"],
        "version": "1",
        "input_schema": _object(
            {
                "document": {"type": "string", "default": "document"},
                "lines": {"type": "integer", "minimum": 0, "maximum": 100, "default": 5},
            }
        ),
        "timeout_seconds": 120,
    },
    {
        "name": "search",
        "entrypoint": "flows.serviceplan:Search",
        "description": "CrewAI crew (@CrewBase): a researcher with a search tool, an analyst "
        "and a writer with a word counter turn a topic into a brief.",
        "tags": ["crewai", "crew", "tools", "example"],
        "version": "1",
        "input_schema": _object({"topic": _TOPIC}),
        "timeout_seconds": 300,
    },
    catalog_entry(SEARCH_SPEC),
    {
        "name": "research-flow",
        "entrypoint": "flows.research:ResearchFlow",
        "description": "CrewAI Flow: outlines with an LLM call, researches with a crew, "
        "publishes the brief.",
        "tags": ["crewai", "flow", "example"],
        "version": "1",
        "input_schema": _object(
            {
                "topic": _TOPIC,
                "audience": {"type": "string", "default": "engineers"},
            }
        ),
        "timeout_seconds": 300,
    },
    {
        "name": "review",
        "entrypoint": "flows.review:review_crew",
        "description": "CrewAI task with human_input: a writer drafts a brief and revises it "
        "until a human accepts it (empty reply).",
        "tags": ["crewai", "crew", "human-input", "example"],
        "version": "1",
        "input_schema": _object({"topic": _TOPIC}),
        "timeout_seconds": 3600,
    },
    {
        "name": "approval-flow",
        "entrypoint": "flows.review:ApprovalFlow",
        "description": "CrewAI Flow with @human_feedback: a rollout plan is approved or "
        "rejected by a human, and the flow branches on the answer.",
        "tags": ["crewai", "flow", "human-input", "example"],
        "version": "1",
        "input_schema": _object({"topic": _TOPIC}),
        "timeout_seconds": 3600,
    },
]
