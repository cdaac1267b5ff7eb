"""Parsing of `-i KEY=VALUE`, `--inputs-json` and answers to input requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodoclient.cli.flowref import looks_like_entrypoint, match_flow
from kodoclient.cli.values import (
    parse_answer,
    parse_assignment,
    parse_inputs,
    schema_errors,
)
from kodosumi.v1 import event_pb2 as pb
from kodosumi.v1 import flow_pb2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=3", ("n", 3)),
        ("q=hello world", ("q", "hello world")),
        ('q="3"', ("q", "3")),
        ("flag=true", ("flag", True)),
        ("tags=[1, 2]", ("tags", [1, 2])),
        ("eq=a=b", ("eq", "a=b")),
        ("empty=", ("empty", "")),
        ("zip=007", ("zip", "007")),
        (" k =null", ("k", None)),
    ],
)
def test_assignment(text: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "  =x"])
def test_bad_assignment(text: str) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment(text)


def test_assignments_override_inputs_json(tmp_path: Path) -> None:
    assert parse_inputs(["b=2"], '{"a": 1, "b": 1}') == {"a": 1, "b": 2}
    spec = tmp_path / "inputs.json"
    spec.write_text('{"q": "cats"}')
    assert parse_inputs([], f"@{spec}") == {"q": "cats"}
    for bad in ("[1]", "{nope", f"@{tmp_path / 'missing.json'}"):
        with pytest.raises(ValueError):
            parse_inputs([], bad)


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("yes", pb.INPUT_KIND_APPROVAL, True),
        ("N", pb.INPUT_KIND_APPROVAL, False),
        ("approve", pb.INPUT_KIND_APPROVAL, True),
        ("42", pb.INPUT_KIND_TEXT, "42"),
        ('{"a": 1}', pb.INPUT_KIND_FORM, {"a": 1}),
        ("plain words", pb.INPUT_KIND_FORM, "plain words"),
        ("1.5", pb.INPUT_KIND_UNSPECIFIED, 1.5),
    ],
)
def test_answers(text: str, kind: int, expected: object) -> None:
    assert parse_answer(text, kind) == expected


def test_approval_needs_yes_or_no() -> None:
    with pytest.raises(ValueError, match="yes or no"):
        parse_answer("perhaps", pb.INPUT_KIND_APPROVAL)


def test_schema_errors_name_the_field() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
    assert schema_errors({"n": 1}, schema) == []
    assert schema_errors({"n": "x"}, schema) == ["n: 'x' is not of type 'integer'"]
    assert schema_errors({}, schema) == ["'n' is a required property"]
    assert schema_errors("anything", {}) == []


@pytest.mark.parametrize(
    ("ref", "entrypoint"),
    [
        ("hello", False),
        ("flows.serviceplan.Search", True),
        ("flows.hello:main", True),
        ("./assets/search.yaml", True),
        ("search.yaml", True),
        ("my-flow", False),
    ],
)
def test_entrypoint_shapes(ref: str, entrypoint: bool) -> None:
    assert looks_like_entrypoint(ref) is entrypoint


def test_match_flow_by_name_entrypoint_or_spec_path(tmp_path: Path) -> None:
    flows = [
        flow_pb2.Flow(name="search", entrypoint=str(tmp_path / "assets" / "search.yaml")),
        flow_pb2.Flow(name="serviceplan.Search", entrypoint="flows.serviceplan.Search"),
    ]
    assert match_flow(flows, "serviceplan.Search") is flows[1]
    assert match_flow(flows, "flows.serviceplan.Search") is flows[1]
    assert match_flow(flows, "./assets/search.yaml", cwd=tmp_path) is flows[0]
    assert match_flow(flows, "other", cwd=tmp_path) is None


def test_form_fields_are_asked_required_first_then_by_name() -> None:
    from kodoclient.cli.prompt import flat_form_fields

    schema = {
        "type": "object",
        "properties": {
            "zeta": {"type": "string"},
            "beta": {"type": "integer"},
            "alpha": {"type": "boolean"},
        },
        "required": ["zeta"],
    }
    fields = flat_form_fields(schema)
    assert fields is not None and list(fields) == ["zeta", "alpha", "beta"]
    nested = {"type": "object", "properties": {"a": {"type": "object"}}}
    assert flat_form_fields(nested) is None
