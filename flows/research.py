"""A CrewAI Flow: outline with a direct LLM call, research with the Search crew, publish.

Entrypoint `flows.research:ResearchFlow`. Inputs `topic` and `audience` fill the flow's
state; the execution shows the flow and its method steps, the LLM call of the first step
and every agent, task, LLM and tool step of the crew inside the second.
"""

from __future__ import annotations

from crewai.crews.crew_output import CrewOutput
from crewai.flow.flow import Flow, listen, start
from pydantic import BaseModel

from flows.serviceplan import search_crew
from flows.tools import example_llm


class ResearchState(BaseModel):
    topic: str = "kodosumi"
    audience: str = "engineers"
    outline: str = ""
    brief: str = ""


class ResearchFlow(Flow[ResearchState]):
    """Outline, research and publish a brief about a topic."""

    @start()
    def outline(self) -> str:
        outline = str(
            example_llm().call(
                f"Outline a brief about {self.state.topic} for {self.state.audience} "
                "in three headings."
            )
        )
        self.state.outline = outline
        return outline

    @listen(outline)
    def research(self, outline: str) -> str:
        print(f"Researching {self.state.topic} along the outline: {outline[:60]}")
        output = search_crew().kickoff(inputs={"topic": self.state.topic})
        assert isinstance(output, CrewOutput)  # not a streaming crew
        self.state.brief = output.raw
        return output.raw

    @listen(research)
    def publish(self, brief: str) -> str:
        return f"# {self.state.topic.title()} for {self.state.audience}\n\n{brief}"
