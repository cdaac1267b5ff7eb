"""What a validated YAML crew spec holds: `CrewSpec` with its inputs, agents and tasks, and
`CrewSpecError`, the error naming the file, line and key of a mistake.

No crewai, no YAML: `engine.crew.spec_parser` fills these in, `engine.crew.build` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kodosumi.crew_spec_meta import input_property, object_schema

INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object")
PROCESSES = ("sequential", "hierarchical")


class CrewSpecError(ValueError):
    """An invalid crew spec. The message reads `file:line:column: key: problem`."""

    def __init__(self, path: Path | str, line: int, column: int, key: str, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.key = key
        self.problem = problem
        where = f"{self.path}:{line}:{column}" if line else str(self.path)
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


Mark = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str = "string"
    description: str = ""
    title: str = ""
    default: Any = None
    has_default: bool = False
    enum: tuple[Any, ...] = ()
    required: bool = True

    def json_schema(self) -> dict[str, Any]:
        return input_property(
            self.type,
            title=self.title,
            description=self.description,
            enum=self.enum,
            default=self.default,
            has_default=self.has_default,
        )


@dataclass(frozen=True)
class AgentSpec:
    key: str
    role: str
    goal: str
    backstory: str
    tools: tuple[str, ...] = ()
    llm: str | dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    key: str
    description: str
    expected_output: str
    agent: str | None = None
    context: tuple[str, ...] = ()
    human_input: bool = False
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrewSpec:
    path: Path
    name: str
    description: str = ""
    version: str = "1"
    tags: tuple[str, ...] = ()
    timeout_seconds: float = 0.0
    llm: str | dict[str, Any] | None = None
    manager_llm: str | dict[str, Any] | None = None
    process: str = "sequential"
    verbose: bool = False
    inputs: tuple[InputSpec, ...] = ()
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    tasks: tuple[TaskSpec, ...] = ()
    # Where each key was written, by dotted path ("agents.researcher.tools.0"), so that
    # errors found later (a tool that does not import) can still name the line.
    marks: dict[str, Mark] = field(default_factory=dict, repr=False, compare=False)

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the kickoff inputs (what a node validates launches with)."""
        return object_schema(
            {i.name: i.json_schema() for i in self.inputs},
            [i.name for i in self.inputs if i.required and not i.has_default],
        )

    def kickoff_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs with declared defaults filled in (CrewAI needs every placeholder)."""
        values = {i.name: i.default for i in self.inputs if i.has_default}
        values.update(inputs)
        return values

    def error(self, key: str, problem: str) -> CrewSpecError:
        line, column = self.marks.get(key, (0, 0))
        return CrewSpecError(self.path, line, column, key, problem)
