"""`koco flows NAME`: one flow readably, its inputs as a table (name, type, required,
default, description) read from the flow's JSON Schema."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kodosumi.jsonvalue import struct_to_dict
from kodosumi.pricing import price_text
from kodosumi.v1 import flow_pb2


def type_name(prop: dict[str, Any]) -> str:
    """A property's type as a reader writes it: `string`, `integer | null`, `one of a, b`,
    `array of string`, the model's title for a nested object."""
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list):
        return " | ".join(type_name(o) for o in options if isinstance(o, dict))
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {type_name(prop['items'])}"
    if kind == "object" and prop.get("title"):
        return f"object ({prop['title']})"
    return str(kind)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    return json.dumps(prop["default"])


def inputs_rows(schema: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(schema.get("required") or ())
    rows = []
    for name, raw in properties.items():
        prop = raw if isinstance(raw, dict) else {}
        description = str(prop.get("description", "") or prop.get("title", ""))
        rows.append(
            (name, type_name(prop), "yes" if name in required else "", _default(prop), description)
        )
    return rows


def inputs_table(rows: list[tuple[str, str, str, str, str]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("INPUT", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"):
        table.add_column(column, overflow="fold", no_wrap=column == "INPUT")
    for row in rows:
        table.add_row(*row)
    return table


def accepts_more(schema: dict[str, Any]) -> bool:
    return schema.get("additionalProperties", True) is not False


def flow_view(flow: flow_pb2.Flow) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("flow", Text(flow.name, "bold"))
    if flow.unavailable_reason:
        grid.add_row("UNAVAILABLE", Text(flow.unavailable_reason, "red"))
    grid.add_row("entrypoint", flow.entrypoint)
    if flow.description:
        grid.add_row("description", flow.description)
    if flow.tags:
        grid.add_row("tags", ", ".join(flow.tags))
    if flow.HasField("price"):
        grid.add_row("price", price_text(flow.price))
    if flow.timeout_seconds:
        grid.add_row("timeout", f"{flow.timeout_seconds:g} s")
    if flow.node_id:
        grid.add_row("node", flow.node_id)
    schema = struct_to_dict(flow.input_schema)
    rows = inputs_rows(schema)
    parts: list[RenderableType] = [grid, Text("")]
    if rows:
        parts.append(inputs_table(rows))
    if not rows and accepts_more(schema):
        parts.append(Text("inputs: any (the flow takes the whole input mapping)"))
    elif accepts_more(schema):
        parts.append(Text("other inputs are accepted too (**kwargs)"))
    elif not rows:
        parts.append(Text("inputs: none"))
    return Group(*parts)
