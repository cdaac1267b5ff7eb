"""The YAML crew spec parser: every key checked against what it may hold, each mistake
reported with the line and column it was written at (`CrewSpecError`).

Works on PyYAML's node tree (not plain data) so that every value keeps its mark; `Parser`
returns a `CrewSpec` (`engine.crew.spec_model`). No crewai.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from engine.crew.spec_model import (
    INPUT_TYPES,
    PROCESSES,
    AgentSpec,
    CrewSpec,
    CrewSpecError,
    InputSpec,
    Mark,
    TaskSpec,
)

# CrewAI interpolates `{name}` placeholders in these fields with the kickoff inputs.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
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


class Parser:
    """One spec file's parse; `spec(root)` validates the whole tree and returns the spec."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[str, Mark] = {}

    # -- helpers -------------------------------------------------------------------------------

    def fail(self, node: yaml.Node | None, key: str, problem: str) -> CrewSpecError:
        if node is None:
            line, column = self.marks.get(key, (0, 0))
        else:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        return CrewSpecError(self.path, line, column, key, problem)

    def mapping(self, node: yaml.Node, key: str, allowed: Any = None) -> dict[str, yaml.Node]:
        """A mapping node's entries (keys as text), recording each key's position."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"must be a mapping, not {_kind(node)}")
        entries: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, key, "keys must be plain names")
            name = str(key_node.value)
            path = f"{key}.{name}" if key else name
            if name in entries:
                raise self.fail(key_node, path, "appears twice")
            if allowed is not None and name not in allowed:
                expected = ", ".join(allowed)
                raise self.fail(key_node, path, f"unknown key (expected one of: {expected})")
            self.marks[path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            entries[name] = value_node
        return entries

    def missing(self, parent: str, child: str, why: str = "") -> CrewSpecError:
        """A required key is absent: point at the mapping that should hold it."""
        line, column = self.marks.get(parent, (1, 1))
        key = f"{parent}.{child}" if parent else child
        return CrewSpecError(self.path, line, column, key, f"is missing{why}")

    def value(self, node: yaml.Node) -> Any:
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()

    def text(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            raise self.fail(node, key, f"must be text, not {_kind(node)}")
        value = str(node.value).strip()
        if not value:
            raise self.fail(node, key, "must not be empty")
        return value

    def flag(self, node: yaml.Node, key: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(node, key, "must be true or false")
        return value

    def names(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            return [(self.text(node, key), node)]
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, f"must be a list of names, not {_kind(node)}")
        items = []
        for index, item in enumerate(node.value):
            path = f"{key}.{index}"
            self.marks[path] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append((self.text(item, path), item))
        return items

    def llm(self, node: yaml.Node, key: str) -> str | dict[str, Any]:
        if isinstance(node, yaml.MappingNode):
            settings = self.value(node)
            model = settings.get("model")
            if not isinstance(model, str) or not model.strip():
                raise self.fail(node, key, "an llm mapping needs a 'model' name")
            return dict(settings)
        return self.text(node, key)

    def placeholders(self, node: yaml.Node, key: str, text: str, inputs: set[str]) -> None:
        for name in _PLACEHOLDER.findall(text):
            if name not in inputs:
                declared = ", ".join(sorted(inputs)) or "none"
                raise self.fail(
                    node,
                    key,
                    f"uses {{{name}}}, which is not a declared input (declared: {declared})",
                )

    # -- the spec ------------------------------------------------------------------------------

    def spec(self, root: yaml.Node | None) -> CrewSpec:
        if root is None:
            raise CrewSpecError(self.path, 0, 0, "", "the spec is empty")
        top = self.mapping(root, "", allowed=tuple(_TOP_KEYS))
        for required in ("agents", "tasks"):
            if required not in top:
                raise self.missing("", required, " (a crew needs agents and tasks)")
        inputs = self.inputs(top["inputs"]) if "inputs" in top else ()
        input_names = {i.name for i in inputs}
        agents = self.agents(top["agents"], input_names)
        process = "sequential"
        if "process" in top:
            process = self.text(top["process"], "process")
            if process not in PROCESSES:
                raise self.fail(top["process"], "process", f"must be one of {', '.join(PROCESSES)}")
        tasks = self.tasks(top["tasks"], agents, input_names, process)
        version = self.value(top["version"]) if "version" in top else "1"
        if not isinstance(version, str | int | float) or isinstance(version, bool):
            raise self.fail(top["version"], "version", "must be text or a number")
        timeout = self.value(top["timeout_seconds"]) if "timeout_seconds" in top else 0.0
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise self.fail(top["timeout_seconds"], "timeout_seconds", "must be a number >= 0")
        return CrewSpec(
            path=self.path,
            name=self.text(top["name"], "name") if "name" in top else self.path.stem,
            description=self.text(top["description"], "description")
            if "description" in top
            else "",
            version=str(version),
            tags=tuple(n for n, _ in self.names(top["tags"], "tags")) if "tags" in top else (),
            timeout_seconds=float(timeout),
            llm=self.llm(top["llm"], "llm") if "llm" in top else None,
            manager_llm=self.llm(top["manager_llm"], "manager_llm")
            if "manager_llm" in top
            else None,
            process=process,
            verbose=self.flag(top["verbose"], "verbose") if "verbose" in top else False,
            inputs=inputs,
            agents=agents,
            tasks=tasks,
            marks=self.marks,
        )

    def inputs(self, node: yaml.Node) -> tuple[InputSpec, ...]:
        result = []
        for name, value in self.mapping(node, "inputs").items():
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
            result.append(
                InputSpec(
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
            )
        return tuple(result)

    def agents(self, node: yaml.Node, inputs: set[str]) -> dict[str, AgentSpec]:
        entries = self.mapping(node, "agents")
        if not entries:
            raise self.fail(node, "agents", "must define at least one agent")
        agents = {}
        for name, value in entries.items():
            key = f"agents.{name}"
            fields = self.mapping(value, key, allowed=_AGENT_KEYS)
            texts = {}
            for required in ("role", "goal", "backstory"):
                if required not in fields:
                    raise self.missing(key, required)
                texts[required] = self.text(fields[required], f"{key}.{required}")
                self.placeholders(fields[required], f"{key}.{required}", texts[required], inputs)
            tools = []
            for tool, tool_node in self.names(fields.get("tools") or _EMPTY, f"{key}.tools"):
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
                    raise self.fail(
                        fields["max_iter"], f"{key}.max_iter", "must be an integer >= 1"
                    )
                options["max_iter"] = max_iter
            agents[name] = AgentSpec(
                key=name,
                role=texts["role"],
                goal=texts["goal"],
                backstory=texts["backstory"],
                tools=tuple(tools),
                llm=self.llm(fields["llm"], f"{key}.llm") if "llm" in fields else None,
                options=options,
            )
        return agents

    def tasks(
        self, node: yaml.Node, agents: dict[str, AgentSpec], inputs: set[str], process: str
    ) -> tuple[TaskSpec, ...]:
        entries = self.mapping(node, "tasks")
        if not entries:
            raise self.fail(node, "tasks", "must define at least one task")
        tasks: list[TaskSpec] = []
        for name, value in entries.items():
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
                if agent not in agents:
                    known = ", ".join(agents)
                    raise self.fail(
                        fields["agent"], f"{key}.agent", f"no agent {agent!r} (agents: {known})"
                    )
            elif process == "sequential":
                raise self.missing(key, "agent", " (every task of a sequential crew needs one)")
            context = []
            earlier = [t.key for t in tasks]
            for ref, ref_node in self.names(fields.get("context") or _EMPTY, f"{key}.context"):
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
            tasks.append(
                TaskSpec(
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
            )
        return tuple(tasks)


_EMPTY = yaml.SequenceNode("tag:yaml.org,2002:seq", [])


def _kind(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        tag = node.tag.rsplit(":", 1)[-1]
        return {"null": "empty", "str": "text", "bool": "true/false"}.get(tag, f"a {tag}")
    return "nothing"


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
