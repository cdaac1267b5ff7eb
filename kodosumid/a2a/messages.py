"""Reading what callers send: a flow's inputs and the answers to open input requests.

Each check names the field at fault (`InvalidParams`) or the content type it does not take
(`ContentTypeNotSupported`). Pure, no gRPC.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import value_to_python
from kodosumid.a2a.errors import ContentTypeNotSupported, InvalidParams
from kodosumid.a2a.fold import OpenRequest


def _part_value(part: a2a.Part, field_name: str) -> Any:
    content = part.WhichOneof("content")
    if content == "data":
        return value_to_python(part.data)
    if content == "text":
        return part.text
    if content is None:
        raise InvalidParams.field(field_name, "a part needs text or data")
    raise ContentTypeNotSupported(
        f"{field_name}: {content} parts are not accepted; send text or data"
    )


def check_parts(message: a2a.Message, max_bytes: int) -> None:
    """A message needs parts, each of them within the size limit."""
    if not message.parts:
        raise InvalidParams.field("message.parts", "at least one part is required")
    for index, part in enumerate(message.parts):
        size = part.ByteSize()
        if size > max_bytes:
            raise InvalidParams.field(
                f"message.parts[{index}]", f"{size} bytes, more than the limit of {max_bytes}"
            )


def single_string_field(schema: dict[str, Any]) -> str:
    """The field a text part fills: the flow's only property, when it is a string."""
    properties = schema.get("properties")
    if isinstance(properties, dict) and len(properties) == 1:
        name, prop = next(iter(properties.items()))
        if isinstance(prop, dict) and prop.get("type") == "string":
            return str(name)
    return ""


def launch_inputs(message: a2a.Message, schema: dict[str, Any]) -> dict[str, Any]:
    """A flow's inputs from a message: a data part holding an object, or a text part when the
    flow takes one string field (text parts are joined with newlines)."""
    data = [p for p in message.parts if p.WhichOneof("content") == "data"]
    if data:
        value = _part_value(data[0], "message.parts")
        if not isinstance(value, dict):
            raise InvalidParams.field("message.parts", "the data part must hold an object")
        return value
    texts = [_part_value(p, f"message.parts[{i}]") for i, p in enumerate(message.parts)]
    target = single_string_field(schema)
    if not target:
        raise InvalidParams.field(
            "message.parts",
            "this flow takes structured inputs: send a data part with an object "
            f"matching its schema {json.dumps(schema, sort_keys=True)}",
        )
    return {target: "\n".join(str(t) for t in texts)}


def input_answer(message: a2a.Message, open_requests: dict[str, OpenRequest]) -> tuple[str, Any]:
    """The request a follow-up message answers, and its value.

    A data part `{request_id, value}` names the request; otherwise the message answers the
    only open request, with a data part's value or the text (approvals read yes/no).
    """
    if not open_requests:
        raise InvalidParams.field("message.task_id", "the task awaits no input")
    parts = list(message.parts)
    for part in parts:
        if part.WhichOneof("content") != "data":
            continue
        value = value_to_python(part.data)
        if isinstance(value, dict) and "request_id" in value and "value" in value:
            request_id = str(value["request_id"])
            if request_id not in open_requests:
                raise InvalidParams.field(
                    "message.parts.request_id", f"no open input request {request_id!r}"
                )
            return request_id, value["value"]
    if len(open_requests) > 1:
        raise InvalidParams.field(
            "message.parts",
            "several input requests are open: send a data part {request_id, value}",
        )
    request = next(iter(open_requests.values()))
    value = _part_value(parts[0], "message.parts[0]")
    if request.kind == "approval" and isinstance(value, str):
        value = _approval(value)
    elif request.kind == "form" and isinstance(value, str):
        # A form answered in text: JSON when it reads as JSON (`{"n": 3}`), else the text.
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return request.request_id, value


def _approval(text: str) -> Any:
    answer = text.strip().lower()
    if answer in ("yes", "y", "true", "approve", "approved", "ok"):
        return True
    if answer in ("no", "n", "false", "deny", "denied", "reject"):
        return False
    return text
