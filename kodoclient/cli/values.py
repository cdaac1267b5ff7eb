"""Turning what a user types into JSON values: `-i key=value`, `--inputs-json`, answers.

A value is parsed as JSON and falls back to the plain string, so `-i n=3` sends the number
3, `-i q=hello` the string "hello" and `-i 'q="3"'` the string "3".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema

from kodosumi.v1 import event_pb2

_YES = frozenset({"y", "yes", "true", "1", "approve", "approved", "ok"})
_NO = frozenset({"n", "no", "false", "0", "deny", "denied", "reject", "rejected"})


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(raw)


def parse_inputs(assignments: Sequence[str], inputs_json: str | None) -> dict[str, Any]:
    """`--inputs-json` (an object, or `@file`) first, then each `-i KEY=VALUE` on top."""
    inputs: dict[str, Any] = {}
    if inputs_json:
        text = inputs_json
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as e:
                raise ValueError(f"cannot read {text[1:]}: {e.strerror}") from e
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"--inputs-json is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ValueError("--inputs-json must be a JSON object")
        inputs.update(data)
    for assignment in assignments:
        key, value = parse_assignment(assignment)
        inputs[key] = value
    return inputs


def parse_approval(text: str) -> bool:
    word = text.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(f"answer yes or no, not {text!r}")


def parse_answer(text: str, kind: int) -> Any:
    """An answer to an input request of `kind`, as the flow should receive it."""
    if kind == event_pb2.INPUT_KIND_APPROVAL:
        return parse_approval(text)
    if kind == event_pb2.INPUT_KIND_TEXT:
        # Natural-language answers stay text even when they happen to look like JSON.
        return text
    return parse_value(text)


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """Why `value` violates `schema` (one line per problem); empty when it fits."""
    if not schema:
        return []
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return []  # the node validates again; a schema we cannot read is not the user's fault
    validator = validator_class(schema)
    errors = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        errors.append(f"{where}: {error.message}" if where else error.message)
    return errors
