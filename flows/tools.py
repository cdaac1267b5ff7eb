"""Tools and the model choice shared by the CrewAI examples.

The tools work offline and deterministically (a tiny built-in knowledge base, a word
counter), so the examples run anywhere; real crews would search the web or call APIs.
"""

from __future__ import annotations

import os
import re
from typing import Any

from crewai.tools import tool

from engine.crew.llm import OFFLINE_MODEL, make_llm

# Names the model every example agent uses; unset means the offline scripted model.
MODEL_VARIABLE = "KODOSUMI_EXAMPLE_LLM"

KNOWLEDGE = {
    "kodosumi": "kodosumi runs agentic flows on Ray and streams every step of every "
    "execution live over gRPC, with mTLS identities for nodes, users and flows.",
    "ray": "Ray schedules Python work on a cluster; kodosumi keeps warm executor actors "
    "so that launching a flow pays neither process start-up nor imports.",
    "crewai": "CrewAI organises agents with roles, goals and tools into crews that work "
    "through tasks, sequentially or under a manager agent.",
    "grpc": "gRPC carries typed messages over HTTP/2; server streams let a client follow "
    "an execution's events as they happen and resume after a disconnect.",
    "streaming": "An event stream that is ordered, gapless and resumable lets a watcher "
    "reconnect with its last sequence number and miss nothing.",
    "agents": "An agent pairs a language model with tools and a role; it reasons in steps "
    "and calls tools until it can give a final answer.",
}


def example_llm() -> Any:
    """The LLM of the example agents: `$KODOSUMI_EXAMPLE_LLM`, else the offline model."""
    return make_llm(os.environ.get(MODEL_VARIABLE) or OFFLINE_MODEL)


@tool("knowledge_search")
def knowledge_search(query: str) -> str:
    """Search the offline knowledge base and return the passages matching the query."""
    words = set(re.findall(r"[a-z]+", query.lower()))
    hits = [text for topic, text in KNOWLEDGE.items() if topic in words]
    if not hits:  # no topic named: the passages sharing the most words with the query
        hits = sorted(
            KNOWLEDGE.values(),
            key=lambda text: -len(words & set(re.findall(r"[a-z]+", text.lower()))),
        )[:2]
    return "\n".join(f"- {text}" for text in hits[:3])


@tool("word_count")
def word_count(text: str) -> str:
    """Count the words of a draft, to check it against a length limit."""
    count = len(re.findall(r"\S+", text))
    return f"{count} words"
