"""What the gateway reads before it serves: a flow's JSON Schema as MIP-003 fields (and the
start-up error naming what cannot be expressed), and its TOML configuration's mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.input_schema import UnsupportedSchema, input_fields, request_fields


def test_types_bounds_formats_enums_and_optional_fields_map_to_mip003() -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email", "title": "E-mail"},
            "age": {"type": "integer", "minimum": 18, "exclusiveMaximum": 121},
            "ratio": {"type": "number", "maximum": 1.5, "description": "how much"},
            "style": {"enum": ["Modern", "Classic"]},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
            "ok": {"type": "boolean", "default": False},
        },
        "required": ["email", "age", "style"],
    }
    fields = {f["id"]: f for f in input_fields(schema)}
    assert fields["email"] == {
        "id": "email",
        "type": "email",
        "name": "E-mail",
        "validations": [{"validation": "format", "value": "email"}],
    }
    assert fields["age"]["validations"] == [
        {"validation": "min", "value": "18"},
        {"validation": "max", "value": "120"},
        {"validation": "format", "value": "integer"},
    ]
    assert fields["ratio"]["data"] == {"description": "how much"}
    assert {"validation": "optional", "value": "true"} in fields["ratio"]["validations"]
    assert fields["style"]["type"] == "option"
    assert fields["style"]["data"]["values"] == ["Modern", "Classic"]
    assert fields["tags"]["validations"][0] == {"validation": "max", "value": "2"}
    assert fields["ok"]["data"] == {"default": False}
    assert input_fields({}) == []


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"properties": {"a": {"type": "string", "pattern": "^x"}}}, "input_data.a"),
        ({"properties": {"a": {"type": "object"}}}, "input_data.a"),
        ({"properties": {"a": {"type": "number", "exclusiveMinimum": 0.5}}}, "input_data.a"),
        ({"properties": {"a": {"type": ["string", "null"]}}}, "input_data.a"),
        ({"properties": {"a": {"type": "string", "format": "ipv4"}}}, "input_data.a"),
        ({"properties": {"a": {"type": "array", "items": {"type": "integer"}}}}, "input_data.a"),
        ({"type": "object", "additionalProperties": True}, "input_data"),
        ({"type": "array"}, "input_data"),
        ({"anyOf": [{"type": "object"}]}, "input_data"),
    ],
)
def test_what_mip003_cannot_express_names_the_field(schema: dict[str, object], field: str) -> None:
    with pytest.raises(UnsupportedSchema) as caught:
        input_fields(schema)
    assert caught.value.field == field


def test_an_input_request_is_its_fields_or_one_value_field() -> None:
    form = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert [f["id"] for f in request_fields(form, "How many?")] == ["n"]
    (approval,) = request_fields({"type": "boolean"}, "Approve?")
    assert approval == {"id": "value", "type": "boolean", "name": "Approve?"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


BASE = '[nodes.a]\naddress = "127.0.0.1:1"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE + '[[services]]\npath = "x"\nflow = "f"\nnode = "b"\n',
            ":6: services[0].node: no [nodes.b]",
        ),
        (BASE + '[[services]]\npath = "X/Y"\nflow = "f"\n', ":4: services[0].path: lower-case"),
        (BASE + '[[services]]\npath = "x"\n', "services[0].flow: required"),
        (
            BASE + '[[services]]\npath = "x"\nflow = "f"\n[services.price]\namount = -1\n',
            ":7: services[0].price.amount: an amount >= 0",
        ),
        (
            BASE + '[[services]]\npath = "x"\nflow = "f"\nprize = 1\n',
            "services[0].prize: unknown key",
        ),
        (BASE + '[payments]\nbackend = "paypal"\n', ":4: payments.backend: one of"),
        (BASE + '[payments]\nbackend = "masumi"\n', "payments.masumi.url: required"),
        (BASE + '[gateway]\nlisten = "nowhere"\n', ":4: gateway.listen: host:port"),
        (
            BASE + '[[services]]\npath = "x"\nflow = "f"\n[[services]]\npath = "x"\nflow = "g"\n',
            "services[1].path: 'x' is used twice",
        ),
        (BASE + '[payments.ledger.purchasers]\nabc = "user/a"\n', "payments.ledger.purchasers"),
    ],
)
def test_config_mistakes_name_the_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert message in str(caught.value), str(caught.value)


def test_the_masumi_api_key_comes_from_the_environment(tmp_path: Path) -> None:
    text = BASE + '[payments]\nbackend = "masumi"\n[payments.masumi]\nurl = "http://127.0.0.1:9/"\n'
    config = load_config(write(tmp_path, text), env={"KODOGATE_MASUMI_API_KEY": "secret-123"})
    assert config.masumi.api_key == "secret-123" and config.masumi.url == "http://127.0.0.1:9"
    assert "secret-123" not in repr(config)


def test_inline_artifacts_are_kept_up_to_the_limit_and_the_rest_left_out() -> None:
    """A flow emitting a huge inline artifact cannot fill the gateway's memory: that one is
    left out whole (files are how large outputs travel), smaller ones are still kept."""
    from gateway.job_fold import MAX_INLINE_BYTES, ExecutionView, apply
    from kodosumi.v1 import event_pb2

    view = ExecutionView()
    chunk = 1 << 20
    for i in range(MAX_INLINE_BYTES // chunk + 2):
        event = event_pb2.Event()
        event.artifact.artifact_id, event.artifact.name = "big", "big.bin"
        event.artifact.data = b"x" * chunk
        event.artifact.last_chunk = i == MAX_INLINE_BYTES // chunk + 1
        apply(view, event)
    small = event_pb2.Event()
    small.artifact.artifact_id, small.artifact.name = "small", "small.txt"
    small.artifact.data, small.artifact.last_chunk = b"ok", True
    apply(view, small)
    assert view.complete == ["small"] and view.dropped == {"big"}
    assert view.inline_bytes == 2 and set(view.inline) == {"small"}
