"""Input schemas read from flow signatures (`engine.signature_schema`), and the values the
engine builds from validated inputs (models, Enums)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from engine.signature_schema import SignatureError, build_arguments, signature_schema
from tests.engine import sigflows


def _errors(schema: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(inputs)]


def test_hints_defaults_literals_enums_and_descriptions() -> None:
    schema = signature_schema(sigflows.greet)
    assert schema is not None
    assert schema["additionalProperties"] is False and schema["required"] == []
    props = schema["properties"]
    assert "ctx" not in props
    assert props["name"] == {"type": "string", "description": "Who to greet", "default": "world"}
    assert props["times"] == {"type": "integer", "default": 1}
    assert props["mode"] == {"type": "string", "enum": ["loud", "soft"], "default": "soft"}
    assert props["color"] == {"enum": ["red", "blue"], "default": "red"}
    assert _errors(schema, {"name": "ada", "times": 2}) == []
    # The misspelled input is refused instead of falling back to the default.
    assert any("nmae" in e for e in _errors(schema, {"nmae": "ada"}))
    assert _errors(schema, {"times": "two"}) and _errors(schema, {"mode": "shout"})


def test_a_lone_model_is_the_inputs_and_nested_models_are_properties() -> None:
    lone = signature_schema(sigflows.research)
    assert lone is not None and lone["required"] == ["topic"]
    assert lone["properties"]["depth"]["description"] == "How deep to dig"
    assert _errors(lone, {"topic": "ray"}) == [] and _errors(lone, {"depth": 0})
    nested = signature_schema(sigflows.nested)
    assert nested is not None and nested["required"] == ["req", "window"]
    assert nested["properties"]["window"]["required"] == ["end", "start"]
    assert nested["properties"]["tags"]["anyOf"][1] == {"type": "null"}
    ok = {"req": {"topic": "t"}, "window": {"start": 1, "end": 3}}
    assert _errors(nested, ok) == []
    assert _errors(nested, {**ok, "window": {"start": 1}})


def test_kwargs_accept_more_and_whole_mapping_flows_accept_anything() -> None:
    extra = signature_schema(sigflows.open_ended)
    assert extra is not None and "additionalProperties" not in extra
    assert extra["required"] == ["topic"]
    assert signature_schema(sigflows.whole) is None
    assert signature_schema(sigflows.lone) is None
    assert signature_schema(sigflows.Request) is None  # a class: not a plain function


def test_models_and_enums_are_built_from_the_json_values() -> None:
    built = build_arguments(sigflows.research, {"req": {"topic": "ray"}})
    assert isinstance(built["req"], sigflows.Request) and built["req"].depth == 2
    assert build_arguments(sigflows.greet, {"color": "blue"})["color"] is sigflows.Color.BLUE


def test_a_hint_without_a_json_schema_names_the_parameter() -> None:
    import socket

    def hostile(sock: socket.socket) -> None: ...

    with pytest.raises(SignatureError, match=r"hostile\(sock\)"):
        signature_schema(hostile)
