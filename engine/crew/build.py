"""Build a `crewai.Crew` from a validated YAML crew spec.

Problems only visible when building (a tool that does not import, an LLM that CrewAI
cannot create) are reported as `CrewSpecError`s at the line of the key that caused them.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

from crewai import Agent, Crew, Process, Task
from crewai.tools import BaseTool
from crewai.tools import tool as make_tool

from engine import loader
from engine.crew.llm import make_llm
from engine.crew.spec import CrewSpec


def resolve_tool(reference: str) -> BaseTool:
    """A tool from an import reference: a BaseTool, a BaseTool class, or a plain function."""
    target = loader.load(reference)
    if isinstance(target, BaseTool):
        return target
    if inspect.isclass(target) and issubclass(target, BaseTool):
        return cast(BaseTool, cast(Any, target)())  # its fields have defaults (or it fails here)
    if callable(target):
        if not (target.__doc__ or "").strip():
            raise ValueError(f"{reference} needs a docstring: it is the tool's description")
        return make_tool(target)  # type: ignore[no-any-return]
    raise TypeError(f"{reference} is not a tool (a crewai BaseTool or a function)")


def build_crew(spec: CrewSpec) -> Crew:
    llms: dict[str, Any] = {}

    def llm_for(value: str | dict[str, Any] | None, key: str) -> Any:
        chosen = value if value is not None else spec.llm
        cache_key = repr(chosen)
        if cache_key not in llms:
            try:
                llms[cache_key] = make_llm(chosen)
            except Exception as exc:
                raise spec.error(key, f"cannot create the LLM: {exc}") from exc
        return llms[cache_key]

    agents: dict[str, Agent] = {}
    for name, agent_spec in spec.agents.items():
        key = f"agents.{name}"
        tools = []
        for index, reference in enumerate(agent_spec.tools):
            try:
                tools.append(resolve_tool(reference))
            except Exception as exc:
                path = f"{key}.tools.{index}" if f"{key}.tools.{index}" in spec.marks else key
                raise spec.error(path, f"tool {reference!r}: {exc}") from exc
        options = {"verbose": spec.verbose, **agent_spec.options}
        agents[name] = Agent(
            role=agent_spec.role,
            goal=agent_spec.goal,
            backstory=agent_spec.backstory,
            tools=tools,
            llm=llm_for(agent_spec.llm, f"{key}.llm" if agent_spec.llm is not None else "llm"),
            **options,
        )
    tasks: dict[str, Task] = {}
    for task_spec in spec.tasks:
        options = dict(task_spec.options)
        if task_spec.context:
            # Left out otherwise: CrewAI then passes the previous outputs on by itself.
            options["context"] = [tasks[ref] for ref in task_spec.context]
        tasks[task_spec.key] = Task(
            name=task_spec.name,
            description=task_spec.description,
            expected_output=task_spec.expected_output,
            agent=agents[task_spec.agent] if task_spec.agent else None,
            human_input=task_spec.human_input,
            **options,
        )
    extra: dict[str, Any] = {}
    if spec.process == "hierarchical":
        key = "manager_llm" if spec.manager_llm is not None else "llm"
        extra["manager_llm"] = llm_for(spec.manager_llm, key)
    return Crew(
        name=spec.name,
        agents=list(agents.values()),
        tasks=list(tasks.values()),
        process=Process(spec.process),
        verbose=spec.verbose,
        **extra,
    )
