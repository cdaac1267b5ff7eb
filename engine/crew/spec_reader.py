"""Reading a crew spec's YAML node tree: `SpecReader` turns nodes into checked values
(mappings with allowed keys, text, flags, name lists, llm settings, `{input}` placeholders)
and records each mistake with the line and column it was written at (`CrewSpecError`),
going on with the next part so one run names them all. `Parser` (spec_parser.py) builds
on it, key by key. No crewai.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from engine.crew.spec_model import CrewSpecError, Mark

# CrewAI interpolates `{name}` placeholders in these fields with the kickoff inputs.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# An absent list: what `names` reads when an optional list key is not there.
EMPTY = yaml.SequenceNode("tag:yaml.org,2002:seq", [])


class SpecReader:
    """The node-level checks of one spec file's parse, and the mistakes found so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[str, Mark] = {}
        # Every mistake found, in file order of discovery: a part (an input, an agent, a
        # task, a top-level key) with a mistake is left out and the parse goes on, so that
        # one run names them all (`errors`); `spec` raises the first.
        self.errors: list[CrewSpecError] = []
        # Names of inputs, agents and tasks that are declared but have a mistake: references
        # to them are not reported again.
        self.broken_inputs: set[str] = set()
        self.broken_agents: set[str] = set()
        self.broken_tasks: set[str] = set()

    @contextlib.contextmanager
    def recover(self) -> Iterator[None]:
        """Record a mistake inside the block and go on with the next part."""
        try:
            yield
        except CrewSpecError as e:
            self.errors.append(e)

    def fail(self, node: yaml.Node | None, key: str, problem: str) -> CrewSpecError:
        if node is None:
            line, column = self.marks.get(key, (0, 0))
        else:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        return CrewSpecError(self.path, line, column, key, problem)

    def mapping(self, node: yaml.Node, key: str, allowed: Any = None) -> dict[str, yaml.Node]:
        """A mapping node's entries (keys as text), recording each key's position."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"must be a mapping, not {kind_of(node)}")
        entries: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, key, "keys must be plain names")
            name = str(key_node.value)
            path = f"{key}.{name}" if key else name
            if name in entries:
                self.errors.append(self.fail(key_node, path, "appears twice"))
                continue
            if allowed is not None and name not in allowed:
                expected = ", ".join(allowed)
                problem = f"unknown key (expected one of: {expected})"
                self.errors.append(self.fail(key_node, path, problem))
                continue
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
            raise self.fail(node, key, f"must be text, not {kind_of(node)}")
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
            raise self.fail(node, key, f"must be a list of names, not {kind_of(node)}")
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


def kind_of(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        tag = node.tag.rsplit(":", 1)[-1]
        return {"null": "empty", "str": "text", "bool": "true/false"}.get(tag, f"a {tag}")
    return "nothing"
