"""YAML crew specs: parsing and validation, with errors that name the file, line and key.

A spec describes a crew without Python (see `assets/search.yaml` and `docs/flows.md`):

```yaml
name: search
description: Research a topic and write a short brief.
llm: offline/scripted            # default model of every agent (and of the manager)
process: sequential              # or hierarchical
inputs:
  topic: {type: string, description: What to research, default: kodosumi}
agents:
  researcher:
    role: Researcher
    goal: Find facts about {topic}
    backstory: ...
    tools: [flows.tools:search_catalog]
tasks:
  research:
    description: Research {topic}.
    expected_output: Five bullet points.
    agent: researcher
  write:
    description: Write a brief about {topic}.
    expected_output: A short markdown brief.
    agent: writer
    context: [research]
```

The rooms: `spec_model` (what a valid spec holds, and `CrewSpecError`) and `spec_parser`
(the checks, key by key, over the node-level reads of `spec_reader`); this module reads a
file or text with them and gathers their names for importers. None of them imports crewai
(a node validates specs and derives input schemas from them without it);
`engine.crew.build` turns a `CrewSpec` into a `crewai.Crew`.
"""

from __future__ import annotations

from pathlib import Path

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
from engine.crew.spec_parser import Parser

__all__ = [
    "INPUT_TYPES",
    "PROCESSES",
    "AgentSpec",
    "CrewSpec",
    "CrewSpecError",
    "InputSpec",
    "Mark",
    "TaskSpec",
    "check_spec",
    "load_spec",
    "parse_spec",
]


def load_spec(path: str | Path) -> CrewSpec:
    """Read and validate a YAML crew spec; raises CrewSpecError naming file, line and key."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CrewSpecError(file, 0, 0, "", f"cannot read the spec: {exc.strerror or exc}") from exc
    return parse_spec(text, file)


def parse_spec(text: str, path: str | Path = "<spec>") -> CrewSpec:
    file = Path(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise CrewSpecError(file, line, column, "", f"not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise CrewSpecError(file, 0, 0, "", f"not valid YAML: {exc}") from exc
    return Parser(file).spec(root)


def check_spec(path: str | Path) -> list[CrewSpecError]:
    """Every mistake of the spec at `path`, in the order found (empty: it is valid)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as exc:
        return [CrewSpecError(file, 0, 0, "", f"cannot read the spec: {exc.strerror or exc}")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return [CrewSpecError(file, line, column, "", f"not valid YAML: {exc.problem}")]
    except yaml.YAMLError as exc:
        return [CrewSpecError(file, 0, 0, "", f"not valid YAML: {exc}")]
    return Parser(file).check(root)
