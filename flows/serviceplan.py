"""CrewAI crews: the `Search` crew in its three entrypoint forms.

- `Search`: a `@CrewBase` class, agents and tasks in `config/search/*.yaml` (CrewAI's
  project layout). Entrypoint `flows.serviceplan:Search`.
- `search_crew`: a factory function building the same crew in plain Python. Entrypoint
  `flows.serviceplan:search_crew`.
- `quick_search`: a `Crew` object (one agent, one task). Entrypoint
  `flows.serviceplan:quick_search`; each execution runs a copy of it.

Kickoff input: `topic`. The researcher and the writer use tools, so an execution shows
task, agent, LLM and tool steps.
"""

from __future__ import annotations

from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, llm, task, tool

from engine.crew import crew_factory
from flows.tools import example_llm, knowledge_search, word_count


@CrewBase
class Search:
    """Research a topic, pick what matters, write a brief."""

    # Paths here; @CrewBase replaces them with the loaded YAML when the class is instantiated.
    agents_config: Any = "config/search/agents.yaml"
    tasks_config: Any = "config/search/tasks.yaml"
    agents: list[Any]
    tasks: list[Any]

    @llm
    def example_llm(self) -> Any:
        return example_llm()

    @tool
    def knowledge_search(self) -> Any:
        return knowledge_search

    @tool
    def word_count(self) -> Any:
        return word_count

    @agent
    def researcher(self) -> Agent:
        return Agent(config=self.agents_config["researcher"])

    @agent
    def analyst(self) -> Agent:
        return Agent(config=self.agents_config["analyst"])

    @agent
    def writer(self) -> Agent:
        return Agent(config=self.agents_config["writer"])

    @task
    def research(self) -> Task:
        return Task(config=self.tasks_config["research"])  # type: ignore[call-arg]

    @task
    def analyze(self) -> Task:
        return Task(config=self.tasks_config["analyze"])  # type: ignore[call-arg]

    @task
    def write(self) -> Task:
        return Task(config=self.tasks_config["write"])  # type: ignore[call-arg]

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)


@crew_factory
def search_crew(verbose: bool = False) -> Crew:
    """The Search crew built in plain Python (`verbose` prints CrewAI's step panels)."""
    model = example_llm()
    researcher = Agent(
        role="Researcher",
        goal="Find the facts that matter about {topic}",
        backstory="You dig through the knowledge base before anyone writes a word.",
        tools=[knowledge_search],
        llm=model,
        verbose=verbose,
    )
    writer = Agent(
        role="Writer",
        goal="Write a short, plain brief about {topic}",
        backstory="You write for busy engineers and check the length of every draft.",
        tools=[word_count],
        llm=model,
        verbose=verbose,
    )
    research = Task(
        name="research",
        description="Research {topic} in the knowledge base and collect the relevant facts.",
        expected_output="A list of facts about {topic}.",
        agent=researcher,
    )
    write = Task(
        name="write",
        description="Write a brief about {topic} for engineers.",
        expected_output="A markdown brief of at most 150 words.",
        agent=writer,
        context=[research],
    )
    return Crew(agents=[researcher, writer], tasks=[research, write], verbose=verbose)


quick_search = Crew(
    name="quick_search",
    agents=[
        researcher := Agent(
            role="Researcher",
            goal="Answer questions about {topic} from the knowledge base",
            backstory="You answer in one short paragraph.",
            tools=[knowledge_search],
            llm=example_llm(),
        )
    ],
    tasks=[
        Task(
            name="answer",
            description="Answer: what is {topic}?",
            expected_output="One paragraph.",
            agent=researcher,
        )
    ],
)
