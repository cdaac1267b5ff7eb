"""JSON Schema checks that name each bad field (for `BadRequest` field violations)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from kodosumi.errors import FieldViolation


def check_schema(schema: dict[str, Any]) -> None:
    """Raise jsonschema.SchemaError when `schema` itself is not a valid JSON Schema."""
    jsonschema.validators.validator_for(schema).check_schema(schema)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    # Keyed by the schema's canonical JSON: building a validator is the costly part.
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def violations(schema: dict[str, Any], value: Any, root: str) -> list[FieldViolation]:
    """Every way `value` violates `schema`, each named by its dotted path below `root`."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    found = []
    for error in sorted(
        validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        path = ".".join(str(p) for p in error.absolute_path)
        where = f"{root}.{path}" if path else root
        plain = isinstance(error.schema, dict) and "patternProperties" not in error.schema
        if error.validator == "additionalProperties" and plain and isinstance(error.instance, dict):
            found.extend(_unknown_fields(error.schema, error.instance, where))
            continue
        if error.validator == "required" and isinstance(error.instance, dict):
            # One error per missing key, all with the same list: name each key once.
            found.extend(
                FieldViolation(f"{where}.{key}", "required")
                for key in error.validator_value
                if key not in error.instance
                and FieldViolation(f"{where}.{key}", "required") not in found
            )
            continue
        found.append(FieldViolation(where, error.message))
    return found


def _unknown_fields(schema: Any, instance: dict[str, Any], where: str) -> list[FieldViolation]:
    """One violation per unexpected key, named by its own path, saying what is accepted (a
    misspelled input reads `inputs.nmae: unknown (expected one of: name, times)`)."""
    known = sorted(schema.get("properties") or {}) if isinstance(schema, dict) else []
    expected = f" (expected one of: {', '.join(known)})" if known else " (none are expected)"
    return [
        FieldViolation(f"{where}.{key}", f"unknown{expected}")
        for key in sorted(instance)
        if key not in known
    ]
