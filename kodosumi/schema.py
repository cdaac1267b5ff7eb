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
        found.append(FieldViolation(f"{root}.{path}" if path else root, error.message))
    return found
