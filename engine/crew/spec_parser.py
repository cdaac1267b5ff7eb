"""The YAML crew spec parser: every key checked against what it may hold, each mistake
reported with the line and column it was written at (`CrewSpecError`).

Works on PyYAML's node tree (not plain data) so that every value keeps its mark; `Parser`
returns a `CrewSpec` (`engine.crew.spec_model`). The node-level checks it builds on (text,
flags, mappings with allowed keys, placeholders) are `SpecReader` in `spec_reader.py`.
No crewai.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from engine.crew.spec_model import (
    INPUT_TYPES,
    PROCESSES,
    AgentSpec,
    CrewSpec,
    CrewSpecError,
    InputSpec,
    TaskSpec,
)
from engine.crew.spec_reader import EMPTY, SpecReader

_IMPORT_REF = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

_TOP_KEYS = {
    "name": "flow name (default: the file name)",
    "description": "what the crew does",
    "version": "version of the spec",
    "tags": "catalog tags",
    "timeout_seconds": "execution timeout",
    "llm": "default model of the agents",
    "manager_llm": "model of the manager (hierarchical process)",
    "process": "sequential or hierarchical",
    "verbose": "print CrewAI's verbose output",
    "inputs": "the kickoff inputs",
    "agents": "the agents",
    "tasks": "the tasks, in order",
}
_INPUT_KEYS = ("type", "description", "default", "enum", "required", "title")
_AGENT_KEYS = (
    "role",
    "goal",
    "backstory",
    "tools",
    "llm",
    "allow_delegation",
    "max_iter",
    "verbose",
)
_TASK_KEYS = (
    "name",
    "description",
    "expected_output",
    "agent",
    "context",
    "human_input",
    "markdown",
)


class Parser(SpecReader):
    """One spec file's parse; `spec(root)` validates the whole tree and returns the spec."""

    # -- the spec ------------------------------------------------------------------------------

    def spec(self, root: yaml.Node | None) -> CrewSpec:
        """The validated spec; raises the first mistake (`check` lists them all)."""
        spec = self._spec(root)
        if self.errors:
            raise self.errors[0]
        return spec

    def check(self, root: yaml.Node | None) -> list[CrewSpecError]:
        """Every mistake of the spec (empty: it is valid)."""
        try:
            self._spec(root)
        except CrewSpecError as e:
            self.errors.append(e)
        return list(self.errors)

    def _spec(self, root: yaml.Node | None) -> CrewSpec:
        if root is None:
            raise CrewSpecError(self.path, 0, 0, "", "the spec is empty")
        top = self.mapping(root, "", allowed=tuple(_TOP_KEYS))
        for required in ("agents", "tasks"):
            if required not in top:
                self.errors.append(self.missing("", required, " (a crew needs agents and tasks)"))
        inputs: tuple[InputSpec, ...] = ()
        if "inputs" in top:
            with self.recover():
                inputs = self.inputs(top["inputs"])
        input_names = {i.name for i in inputs} | self.broken_inputs
        agents: dict[str, AgentSpec] = {}
        if "agents" in top:
            with self.recover():
                agents = self.agents(top["agents"], input_names)
        process = "sequential"
        if "process" in top:
            with self.recover():
                process = self.text(top["process"], "process")
                if process not in PROCESSES:
                    problem = f"must be one of {', '.join(PROCESSES)}"
                    process = "sequential"
                    raise self.fail(top["process"], "process", problem)
        tasks: tuple[TaskSpec, ...] = ()
        if "tasks" in top:
            with self.recover():
                tasks = self.tasks(top["tasks"], agents, input_names, process)
        version: Any = "1"
        if "version" in top:
            version = self.value(top["version"])
            if not isinstance(version, str | int | float) or isinstance(version, bool):
                self.errors.append(self.fail(top["version"], "version", "must be text or a number"))
        timeout: Any = 0.0
        if "timeout_seconds" in top:
            timeout = self.value(top["timeout_seconds"])
            if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
                problem = "must be a number >= 0"
                self.errors.append(self.fail(top["timeout_seconds"], "timeout_seconds", problem))
                timeout = 0.0
        texts: dict[str, Any] = {"name": self.path.stem, "description": "", "tags": ()}
        texts.update({"llm": None, "manager_llm": None, "verbose": False})
        readers: dict[str, Callable[[yaml.Node, str], Any]] = {
            "name": self.text,
            "description": self.text,
            "tags": lambda node, key: tuple(n for n, _ in self.names(node, key)),
            "llm": self.llm,
            "manager_llm": self.llm,
            "verbose": self.flag,
        }
        for key, read in readers.items():
            if key in top:
                with self.recover():
                    texts[key] = read(top[key], key)
        return CrewSpec(
            path=self.path,
            name=texts["name"],
            description=texts["description"],
            version=str(version),
            tags=texts["tags"],
            timeout_seconds=float(timeout),
            llm=texts["llm"],
            manager_llm=texts["manager_llm"],
            process=process,
            verbose=texts["verbose"],
            inputs=inputs,
            agents=agents,
            tasks=tasks,
            marks=self.marks,
        )

    def inputs(self, node: yaml.Node) -> tuple[InputSpec, ...]:
        result: list[InputSpec] = []
        for name, value in self.mapping(node, "inputs").items():
            with self.recover():
                self.broken_inputs.add(name)  # until it checks out: no follow-up errors
                result.append(self.input(node, name, value))
                self.broken_inputs.discard(name)
        return tuple(result)

    def input(self, node: yaml.Node, name: str, value: yaml.Node) -> InputSpec:
        key = f"inputs.{name}"
        if not _KEY.match(name):
            raise self.fail(node, key, "input names are letters, digits and underscores")
        entries: dict[str, yaml.Node]
        if isinstance(value, yaml.ScalarNode):  # shorthand: `topic: string`
            entries = {"type": value}
        else:
            entries = self.mapping(value, key, allowed=_INPUT_KEYS)
        kind = self.text(entries["type"], f"{key}.type") if "type" in entries else "string"
        if kind not in INPUT_TYPES:
            raise self.fail(
                entries["type"], f"{key}.type", f"must be one of {', '.join(INPUT_TYPES)}"
            )
        has_default = "default" in entries
        default = self.value(entries["default"]) if has_default else None
        if has_default and not _matches(kind, default):
            raise self.fail(entries["default"], f"{key}.default", f"is not a {kind}")
        enum: tuple[Any, ...] = ()
        if "enum" in entries:
            options = self.value(entries["enum"])
            if not isinstance(options, list) or not options:
                raise self.fail(entries["enum"], f"{key}.enum", "must be a non-empty list")
            enum = tuple(options)
        required = (
            self.flag(entries["required"], f"{key}.required")
            if ("required" in entries)
            else not has_default
        )
        return InputSpec(
            name=name,
            type=kind,
            description=self.text(entries["description"], f"{key}.description")
            if "description" in entries
            else "",
            title=self.text(entries["title"], f"{key}.title") if "title" in entries else "",
            default=default,
            has_default=has_default,
            enum=enum,
            required=required,
        )

    def agents(self, node: yaml.Node, inputs: set[str]) -> dict[str, AgentSpec]:
        entries = self.mapping(node, "agents")
        if not entries:
            raise self.fail(node, "agents", "must define at least one agent")
        agents: dict[str, AgentSpec] = {}
        for name, value in entries.items():
            with self.recover():
                self.broken_agents.add(name)
                agents[name] = self.agent(name, value, inputs)
                self.broken_agents.discard(name)
        return agents

    def agent(self, name: str, value: yaml.Node, inputs: set[str]) -> AgentSpec:
        key = f"agents.{name}"
        fields = self.mapping(value, key, allowed=_AGENT_KEYS)
        texts = {}
        for required in ("role", "goal", "backstory"):
            if required not in fields:
                raise self.missing(key, required)
            texts[required] = self.text(fields[required], f"{key}.{required}")
            self.placeholders(fields[required], f"{key}.{required}", texts[required], inputs)
        tools = []
        for tool, tool_node in self.names(fields.get("tools") or EMPTY, f"{key}.tools"):
            if not _IMPORT_REF.match(tool):
                raise self.fail(
                    tool_node,
                    f"{key}.tools",
                    f"{tool!r} is not an import reference like 'package.module:tool'",
                )
            tools.append(tool)
        options: dict[str, Any] = {}
        for flag in ("allow_delegation", "verbose"):
            if flag in fields:
                options[flag] = self.flag(fields[flag], f"{key}.{flag}")
        if "max_iter" in fields:
            max_iter = self.value(fields["max_iter"])
            if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
                raise self.fail(fields["max_iter"], f"{key}.max_iter", "must be an integer >= 1")
            options["max_iter"] = max_iter
        return AgentSpec(
            key=name,
            role=texts["role"],
            goal=texts["goal"],
            backstory=texts["backstory"],
            tools=tuple(tools),
            llm=self.llm(fields["llm"], f"{key}.llm") if "llm" in fields else None,
            options=options,
        )

    def tasks(
        self, node: yaml.Node, agents: dict[str, AgentSpec], inputs: set[str], process: str
    ) -> tuple[TaskSpec, ...]:
        entries = self.mapping(node, "tasks")
        if not entries:
            raise self.fail(node, "tasks", "must define at least one task")
        tasks: list[TaskSpec] = []
        for name, value in entries.items():
            with self.recover():
                self.broken_tasks.add(name)
                tasks.append(self.task(name, value, agents, inputs, process, tasks))
                self.broken_tasks.discard(name)
        return tuple(tasks)

    def task(
        self,
        name: str,
        value: yaml.Node,
        agents: dict[str, AgentSpec],
        inputs: set[str],
        process: str,
        tasks: list[TaskSpec],
    ) -> TaskSpec:
        key = f"tasks.{name}"
        fields = self.mapping(value, key, allowed=_TASK_KEYS)
        texts = {}
        for required in ("description", "expected_output"):
            if required not in fields:
                raise self.missing(key, required)
            texts[required] = self.text(fields[required], f"{key}.{required}")
            self.placeholders(fields[required], f"{key}.{required}", texts[required], inputs)
        agent = None
        if "agent" in fields:
            agent = self.text(fields["agent"], f"{key}.agent")
            if agent not in agents and agent not in self.broken_agents:
                known = ", ".join(agents)
                raise self.fail(
                    fields["agent"], f"{key}.agent", f"no agent {agent!r} (agents: {known})"
                )
        elif process == "sequential":
            raise self.missing(key, "agent", " (every task of a sequential crew needs one)")
        context = []
        earlier = [t.key for t in tasks] + sorted(self.broken_tasks - {name})
        for ref, ref_node in self.names(fields.get("context") or EMPTY, f"{key}.context"):
            if ref not in earlier:
                problem = (
                    "a task cannot use its own output"
                    if ref == name
                    else f"no earlier task {ref!r} (context names tasks defined above)"
                )
                raise self.fail(ref_node, f"{key}.context", problem)
            context.append(ref)
        options = {}
        if "markdown" in fields:
            options["markdown"] = self.flag(fields["markdown"], f"{key}.markdown")
        return TaskSpec(
            key=name,
            description=texts["description"],
            expected_output=texts["expected_output"],
            agent=agent,
            context=tuple(context),
            human_input=self.flag(fields["human_input"], f"{key}.human_input")
            if "human_input" in fields
            else False,
            name=self.text(fields["name"], f"{key}.name") if "name" in fields else name,
            options=options,
        )


def _matches(kind: str, value: Any) -> bool:
    checks: dict[str, Any] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    return bool(checks[kind](value))
