"""A flow's JSON Schema as MIP-003 input fields (`/input_schema`, input requests' groups).

MIP-003 (Attachment 01) describes inputs as a flat list of fields, each with a `type`
(`text`, `number`, `boolean`, `option`, `email`, `url`, `date`, ...), optional `data`
(`description`, `placeholder`, `default`, `values`) and `validations` (`min`, `max`,
`format`, `optional`). What a JSON Schema says that this list cannot say (nested objects,
patterns, exclusive bounds of decimals, unions, ...) is an `UnsupportedSchema` naming the
field: the gateway refuses to start rather than sell a service whose form lies about what it
accepts. The table of what maps to what is in docs/gateway.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["UnsupportedSchema", "input_fields", "request_fields"]

# Keywords that only describe (kept as `data` where MIP-003 has a place for them).
_DESCRIPTIVE = frozenset({"title", "description", "default", "examples", "$schema", "$id"})
_STRING_FORMATS = {
    "email": "email",
    "uri": "url",
    "url": "url",
    "iri": "url",
    "date": "date",
    "date-time": "datetime-local",
    "time": "time",
}
_STRING_KEYS = frozenset({"type", "minLength", "maxLength", "format", "enum"})
_NUMBER_KEYS = frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_ARRAY_KEYS = frozenset({"type", "items", "minItems", "maxItems", "uniqueItems"})

# The one field an input request whose schema is not an object of fields is answered by.
VALUE_FIELD = "value"


class UnsupportedSchema(ValueError):
    """A part of a JSON Schema that MIP-003 input fields cannot express."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def _check_keys(schema: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(schema) - allowed - _DESCRIPTIVE)
    if extra:
        raise UnsupportedSchema(where, f"{', '.join(extra)} cannot be expressed in MIP-003")


def _bound(value: Any, where: str, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnsupportedSchema(where, f"{key} must be a number")
    return str(value)


def _string_field(schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    _check_keys(schema, _STRING_KEYS, where)
    validations: list[dict[str, str]] = []
    if "enum" in schema:
        values = schema["enum"]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise UnsupportedSchema(where, "enum must list strings to be options")
        if set(schema) & {"minLength", "maxLength", "format"}:
            raise UnsupportedSchema(where, "an enum with length or format limits")
        return {
            "type": "option",
            "data": {"values": list(values)},
            "validations": [
                {"validation": "min", "value": "1"},
                {"validation": "max", "value": "1"},
            ],
        }
    kind = "text"
    if "format" in schema:
        fmt = schema["format"]
        if fmt not in _STRING_FORMATS:
            raise UnsupportedSchema(where, f"format {fmt!r} cannot be expressed in MIP-003")
        kind = _STRING_FORMATS[fmt]
        if kind in ("email", "url"):
            validations.append({"validation": "format", "value": kind})
    if "minLength" in schema:
        validations.append(
            {"validation": "min", "value": _bound(schema["minLength"], where, "minLength")}
        )
    if "maxLength" in schema:
        validations.append(
            {"validation": "max", "value": _bound(schema["maxLength"], where, "maxLength")}
        )
    return {"type": kind, "validations": validations}


def _number_field(schema: Mapping[str, Any], integer: bool, where: str) -> dict[str, Any]:
    _check_keys(schema, _NUMBER_KEYS, where)
    validations: list[dict[str, str]] = []
    low, high = schema.get("minimum"), schema.get("maximum")
    for key, step in (("exclusiveMinimum", 1), ("exclusiveMaximum", -1)):
        if key not in schema:
            continue
        bound = schema[key]
        if not integer or isinstance(bound, bool) or not isinstance(bound, int):
            # MIP-003's min and max are inclusive; only integer bounds convert exactly.
            raise UnsupportedSchema(where, f"{key} of a non-integer cannot be expressed")
        if step > 0:
            low = bound + 1 if low is None else max(low, bound + 1)
        else:
            high = bound - 1 if high is None else min(high, bound - 1)
    if low is not None:
        validations.append({"validation": "min", "value": _bound(low, where, "minimum")})
    if high is not None:
        validations.append({"validation": "max", "value": _bound(high, where, "maximum")})
    if integer:
        validations.append({"validation": "format", "value": "integer"})
    return {"type": "number", "validations": validations}


def _array_field(schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    _check_keys(schema, _ARRAY_KEYS, where)
    items = schema.get("items")
    values = items.get("enum") if isinstance(items, dict) else None
    if (
        not isinstance(items, dict)
        or set(items) - _DESCRIPTIVE - {"type", "enum"}
        or items.get("type", "string") != "string"
        or not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) for v in values)
    ):
        raise UnsupportedSchema(where, "only arrays of string enums (multi-select options)")
    validations = []
    if "minItems" in schema:
        validations.append(
            {"validation": "min", "value": _bound(schema["minItems"], where, "minItems")}
        )
    if "maxItems" in schema:
        validations.append(
            {"validation": "max", "value": _bound(schema["maxItems"], where, "maxItems")}
        )
    return {"type": "option", "data": {"values": list(values)}, "validations": validations}


def _field(name: str, schema: Any, required: bool, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise UnsupportedSchema(where, "a schema object")
    kind = schema.get("type")
    if kind is None and "enum" in schema:
        kind = "string"
    if kind == "string":
        built = _string_field(schema, where)
    elif kind in ("integer", "number"):
        built = _number_field(schema, kind == "integer", where)
    elif kind == "boolean":
        _check_keys(schema, frozenset({"type"}), where)
        built = {"type": "boolean", "validations": []}
    elif kind == "array":
        built = _array_field(schema, where)
    else:
        raise UnsupportedSchema(where, f"type {kind!r} cannot be expressed in MIP-003")
    data: dict[str, Any] = dict(built.get("data", {}))
    if isinstance(schema.get("description"), str):
        data["description"] = schema["description"]
    if "default" in schema:
        data["default"] = schema["default"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], str | int | float):
        data["placeholder"] = str(examples[0])
    validations = list(built["validations"])
    if not required:
        validations.append({"validation": "optional", "value": "true"})
    field: dict[str, Any] = {"id": name, "type": built["type"], "name": schema.get("title") or name}
    if data:
        field["data"] = data
    if validations:
        field["validations"] = validations
    return field


def input_fields(
    schema: Mapping[str, Any] | None, root: str = "input_data"
) -> list[dict[str, Any]]:
    """The MIP-003 fields of an object schema (`/input_schema`'s `input_data`).

    An empty schema (a flow without inputs) has no fields. Field names are `root.<name>`
    in errors, as the gateway's 400 answers name them."""
    if not schema:
        return []
    if schema.get("type", "object") != "object":
        raise UnsupportedSchema(root, "the inputs of a flow must be an object")
    allowed = frozenset({"type", "properties", "required", "additionalProperties"})
    _check_keys(schema, allowed, root)
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        raise UnsupportedSchema(root, "properties must be an object")
    if schema.get("additionalProperties") not in (None, False) and not properties:
        raise UnsupportedSchema(root, "free-form inputs (additionalProperties) have no fields")
    required = set(schema.get("required") or ())
    return [
        _field(name, sub, name in required, f"{root}.{name}") for name, sub in properties.items()
    ]


def request_fields(schema: Mapping[str, Any] | None, prompt: str) -> list[dict[str, Any]]:
    """The fields of an input request: an object schema's own fields, else one field named
    `value` (an approval, a text, a number) that `/provide_input` unwraps again."""
    if schema and schema.get("type", "object") == "object" and "properties" in schema:
        return input_fields(schema, "input_data")
    field = _field(
        VALUE_FIELD, dict(schema or {"type": "string"}), True, f"input_data.{VALUE_FIELD}"
    )
    field["name"] = prompt or VALUE_FIELD
    return [field]
