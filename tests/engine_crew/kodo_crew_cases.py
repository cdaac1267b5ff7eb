"""Crews and flows built for the engine tests (loaded by entrypoint, like user flows)."""

from __future__ import annotations

import tempfile
import threading
from typing import Any

from crewai import Agent, Crew, Task
from crewai.events import crewai_event_bus
from crewai.events.base_events import BaseEvent
from crewai.flow.flow import Flow, listen, start
from crewai.tools import tool
from pydantic import BaseModel

from engine.crew import crew_factory
from engine.crew.offline_llm import OfflineLLM


@tool("lookup")
def lookup(query: str) -> str:
    """Look a query up in a fixed table."""
    print(f"lookup tool called with {query}")
    return f"table entry for {query}"


@tool("broken")
def broken(query: str) -> str:
    """A tool that always fails."""
    raise ValueError(f"the broken tool cannot handle {query!r}")


def _crew(llm: Any, tools: list[Any], verbose: bool = False, human_input: bool = False) -> Crew:
    researcher = Agent(
        role="Researcher",
        goal="Find facts about {topic}",
        backstory="Careful.",
        tools=tools,
        llm=llm,
        verbose=verbose,
    )
    writer = Agent(
        role="Writer", goal="Write about {topic}", backstory="Brief.", llm=llm, verbose=verbose
    )
    research = Task(
        name="research",
        description="Research {topic}.",
        expected_output="Facts about {topic}.",
        agent=researcher,
    )
    write = Task(
        name="write",
        description="Write about {topic}.",
        expected_output="A paragraph about {topic}.",
        agent=writer,
        context=[research],
        human_input=human_input,
    )
    return Crew(agents=[researcher, writer], tasks=[research, write], verbose=verbose)


@crew_factory
def slow_crew() -> Crew:
    """Slow enough (15 ms per LLM call) that concurrent executions overlap; verbose."""
    return _crew(OfflineLLM(latency_ms=15), [lookup], verbose=True)


@crew_factory
def failing_llm_crew() -> Crew:
    return _crew(OfflineLLM(script={"Research": [{"error": "model unavailable"}]}), [lookup])


@crew_factory
def failing_tool_crew() -> Crew:
    return _crew(OfflineLLM(), [broken])


@crew_factory
def streaming_crew() -> Crew:
    return _crew(OfflineLLM(stream=True, chunk_chars=16), [lookup])


class Summary(BaseModel):
    title: str
    points: list[str]


@crew_factory
def structured_crew() -> Crew:
    """The last task asks for structured output (a pydantic model)."""
    crew = _crew(OfflineLLM(), [lookup])
    crew.tasks[-1].output_pydantic = Summary
    return crew


@crew_factory
def stream_output_crew() -> Crew:
    """Crew(stream=True): kickoff returns a stream of chunks instead of the output."""
    crew = _crew(OfflineLLM(), [lookup])
    crew.stream = True
    return crew


@crew_factory
def endless_crew() -> Crew:
    """Keeps calling its tool (50 ms per LLM call) until it is cancelled."""
    llm = OfflineLLM(latency_ms=50, tool_rounds=1_000)
    crew = _crew(llm, [lookup])
    for agent in crew.agents:
        agent.max_iter = 1_000
    return crew


class AskFlow(Flow[dict[str, Any]]):
    """Asks with Flow.ask() and answers with what it was told."""

    @start()
    def question(self) -> str:
        answer = self.ask("Which colour should the report have?")
        return str(answer)

    @listen(question)
    def report(self, colour: str) -> str:
        return f"The report is {colour}."


class ForeignSignal(BaseEvent):
    type: str = "foreign_signal"


@tool("signal")
def signal(query: str) -> str:
    """Emit custom CrewAI events, from here and from a thread of its own."""

    class LateSignal(BaseEvent):  # defined after the listener subscribed to all classes
        type: str = "late_signal"
        note: str = ""

    crewai_event_bus.emit(None, LateSignal(note="emitted in the tool"))
    agent_id = _agent_ids[0]
    # A plain thread starts with an empty context: no session, no stream sink.
    thread = threading.Thread(
        target=crewai_event_bus.emit, args=(None, ForeignSignal(agent_id=agent_id))
    )
    thread.start()
    thread.join()
    return "signalled"


_agent_ids: list[str] = []


@crew_factory
def custom_event_crew() -> Crew:
    crew = _crew(OfflineLLM(), [signal])
    _agent_ids[:] = [str(crew.agents[0].id)]
    return crew


@crew_factory
def file_crew() -> Crew:
    """Reads the input file `notes` with a tool, saves a digest with a tool, and its task's
    `output_file` becomes a file too (engine/crew/files.py)."""
    from engine.crew.files import read_input_file, save_output_file

    llm = OfflineLLM(
        script={
            "Digest the notes": [
                {"tool": "read_input_file", "args": {"name": "notes"}},
                {"tool": "save_output_file", "args": {"name": "digest.txt", "content": "DIGEST"}},
                {"final": "The notes were digested."},
            ]
        }
    )
    reader = Agent(
        role="Reader",
        goal="Digest files",
        backstory="Reads carefully.",
        tools=[read_input_file, save_output_file],
        llm=llm,
    )
    digest = Task(
        name="digest",
        description="Digest the notes.",
        expected_output="A digest.",
        agent=reader,
        output_file=f"{tempfile.mkdtemp(prefix='kodo-crew-out-')}/report.md",
    )
    return Crew(agents=[reader], tasks=[digest])
