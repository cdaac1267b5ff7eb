"""YAML crew specs: what a valid spec gives, and errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.crew.spec import CrewSpecError, check_spec, load_spec, parse_spec
from kodosumi.v1 import event_pb2
from tests.engine_crew.helpers import Driver

VALID = """\
name: demo
llm: offline/scripted
inputs:
  topic: {type: string, default: cats}
  count:
    type: integer
    description: How many facts.
agents:
  researcher:
    role: Researcher
    goal: Find {count} facts about {topic}
    backstory: Careful.
    tools: [flows.tools:knowledge_search]
tasks:
  research:
    description: Research {topic}.
    expected_output: Facts.
    agent: researcher
  write:
    description: Write.
    expected_output: Text.
    agent: researcher
    context: [research]
    human_input: true
"""


def test_valid_spec_and_its_input_schema() -> None:
    spec = parse_spec(VALID, "demo.yaml")
    assert spec.name == "demo"
    assert [t.key for t in spec.tasks] == ["research", "write"]
    assert spec.tasks[1].context == ("research",)
    assert spec.tasks[1].human_input
    assert spec.agents["researcher"].tools == ("flows.tools:knowledge_search",)
    assert spec.input_schema() == {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "default": "cats"},
            "count": {"type": "integer", "description": "How many facts."},
        },
        "required": ["count"],
        "additionalProperties": False,
    }
    assert spec.kickoff_inputs({"count": 3}) == {"topic": "cats", "count": 3}


def test_shipped_spec_is_valid() -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "assets" / "search.yaml")
    assert spec.name == "search-yaml"
    assert {a.role for a in spec.agents.values()} == {"Researcher", "Writer"}


def _error(text: str) -> CrewSpecError:
    with pytest.raises(CrewSpecError) as caught:
        parse_spec(text, "/specs/crew.yaml")
    return caught.value


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "problem"),
    [
        ("    role: Researcher\n", "", 9, "agents.researcher.role", "is missing"),
        (
            "    agent: researcher\n    context",
            "    agent: writer\n    context",
            22,
            "tasks.write.agent",
            "no agent 'writer'",
        ),
        ("context: [research]", "context: [summary]", 23, "tasks.write.context", "no earlier task"),
        (
            "Find {count} facts",
            "Find {number} facts",
            11,
            "agents.researcher.goal",
            "{number}, which is not a declared input",
        ),
        (
            "    backstory: Careful.\n",
            "    backstory: Careful.\n    temper: calm\n",
            13,
            "agents.researcher.temper",
            "unknown key",
        ),
        ("human_input: true", "human_input: maybe", 24, "tasks.write.human_input", "true or false"),
        (
            "tools: [flows.tools:knowledge_search]",
            "tools: [not a tool]",
            13,
            "agents.researcher.tools",
            "not an import reference",
        ),
        ("{type: string, default: cats}", "{type: text}", 4, "inputs.topic.type", "must be one of"),
        (
            "llm: offline/scripted\n",
            "llm: offline/scripted\nprocess: parallel\n",
            3,
            "process",
            "sequential, hierarchical",
        ),
    ],
)
def test_errors_name_file_line_and_key(
    old: str, new: str, line: int, key: str, problem: str
) -> None:
    assert old in VALID
    error = _error(VALID.replace(old, new, 1))
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"/specs/crew.yaml:{line}:")
    assert f": {key}: " in str(error)


MANY_MISTAKES = """\
name: many
inputs:
  topic: {type: strin}
agents:
  a:
    role: R
    goal: Find {topic}
    backstory: B
    colour: red
tasks:
  t:
    description: D {nope}
    expected_output: E
    agent: b
  u:
    descriptio: x
    expected_output: E
    agent: a
timeout_seconds: -1
"""


def test_check_names_every_mistake_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(MANY_MISTAKES)
    found = [(e.line, e.key) for e in check_spec(spec)]
    assert found == [
        (3, "inputs.topic.type"),
        (9, "agents.a.colour"),
        (12, "tasks.t.description"),
        (16, "tasks.u.descriptio"),
        (15, "tasks.u.description"),
        (19, "timeout_seconds"),
    ]
    # A broken input's uses are not reported again; loading still raises the first one.
    with pytest.raises(CrewSpecError, match=r"many.yaml:3:17: inputs.topic.type"):
        load_spec(spec)
    assert check_spec(Path(__file__).resolve().parents[2] / "assets" / "search.yaml") == []


def test_yaml_syntax_error_names_the_line() -> None:
    error = _error("agents:\n  a: [1, 2\ntasks: {}\n")
    assert error.line == 3 and "not valid YAML" in str(error)
    assert str(error).startswith("/specs/crew.yaml:3:")


def test_missing_sections_and_empty_file() -> None:
    assert _error("name: x\n").key == "agents"
    assert "empty" in str(_error(""))


async def test_invalid_spec_fails_the_execution_with_the_location(
    driver: Driver, tmp_path: Path
) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        VALID.replace("    agent: researcher\n    context", "    agent: ghost\n    context")
    )
    run = await driver.run(str(spec))
    assert run.status == event_pb2.EXECUTION_STATUS_FAILED
    error = run.of("error")[0]
    assert error.type == "CrewSpecError"
    assert error.message.startswith(f"{spec}:22:12: tasks.write.agent: no agent 'ghost'")
    assert "llm_call" not in run.kinds


async def test_tool_that_does_not_import_fails_with_its_line(
    driver: Driver, tmp_path: Path
) -> None:
    spec = tmp_path / "tools.yaml"
    spec.write_text(VALID.replace("flows.tools:knowledge_search", "flows.tools:no_such_tool"))
    run = await driver.run(str(spec), {"count": 2})
    assert run.status == event_pb2.EXECUTION_STATUS_FAILED
    message = run.of("error")[0].message
    assert message.startswith(f"{spec}:13:") and "agents.researcher.tools.0" in message
    assert "no_such_tool" in message
