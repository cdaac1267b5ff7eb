"""What a catalog needs of a YAML crew spec, read without the engine (and without CrewAI).

A node lists a spec's flow (name, description, version, tags, timeout) and validates
launches against the spec's input schema, but never runs it: the executor does, through
`engine.crew.spec`, which validates the whole file and names the line of any mistake. The
input schema is built here for both, so the node and the engine cannot disagree on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def input_property(
    kind: str,
    *,
    title: str = "",
    description: str = "",
    enum: tuple[Any, ...] = (),
    default: Any = None,
    has_default: bool = False,
) -> dict[str, Any]:
    """The JSON Schema of one declared input."""
    schema: dict[str, Any] = {"type": kind}
    if title:
        schema["title"] = title
    if description:
        schema["description"] = description
    if enum:
        schema["enum"] = list(enum)
    if has_default:
        schema["default"] = default
    return schema


def object_schema(properties: Mapping[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    """The JSON Schema of the kickoff inputs: exactly the declared ones."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": required,
        "additionalProperties": False,
    }


class SpecMetadataError(ValueError):
    """The spec cannot even be listed (unreadable, not a mapping); names the file."""


def _inputs_schema(path: Path, inputs: Any) -> dict[str, Any]:
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise SpecMetadataError(f"{path}: inputs: must be a mapping")
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for name, value in inputs.items():
        entry = {"type": value} if isinstance(value, str) else value  # shorthand `topic: string`
        if not isinstance(entry, dict):
            raise SpecMetadataError(f"{path}: inputs.{name}: must be a type or a mapping")
        has_default = "default" in entry
        properties[str(name)] = input_property(
            str(entry.get("type", "string")),
            title=str(entry.get("title", "")),
            description=str(entry.get("description", "")),
            enum=tuple(entry.get("enum") or ()),
            default=entry.get("default"),
            has_default=has_default,
        )
        if bool(entry.get("required", not has_default)) and not has_default:
            required.append(str(name))
    return object_schema(properties, required)


def catalog_entry(path: str | Path) -> dict[str, Any]:
    """The catalog fields of the spec at `path` (its entrypoint is the path itself)."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SpecMetadataError(f"{file}: cannot read the spec: {e}") from e
    if not isinstance(data, dict):
        raise SpecMetadataError(f"{file}: a spec is a mapping of keys")
    timeout = float(data.get("timeout_seconds") or 0.0) or 300.0
    return {
        "name": str(data.get("name") or file.stem),
        "entrypoint": str(file),
        "description": str(data.get("description", "")),
        "tags": [str(t) for t in data.get("tags") or ()],
        "version": str(data.get("version", "1")),
        "input_schema": _inputs_schema(file, data.get("inputs")),
        "timeout_seconds": int(timeout) if timeout.is_integer() else timeout,
    }
