"""`record`: a protobuf message as the plain JSON data `--json` prints."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from kodosumi.jsonvalue import restore_ints

# JSON values carried as protobuf Struct/Value: their numbers are doubles on the wire.
_JSON_TYPES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


def record(message: Message) -> dict[str, Any]:
    """The proto3 JSON mapping of a message (field names as in the .proto), for --json.

    Inputs, results and other JSON values travel as `Struct`, whose numbers are doubles:
    an integral one is printed as the integer it was (`3`, not `3.0`), as the text views do.
    """
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    _integers_in_json(message, data)
    return data


def _integers_in_json(message: Message, data: dict[str, Any]) -> None:
    for field, value in message.ListFields():
        if field.message_type is None or field.name not in data:
            continue
        if field.message_type.full_name in _JSON_TYPES:
            data[field.name] = restore_ints(data[field.name])
        elif field.message_type.GetOptions().map_entry:
            continue  # maps of JSON values do not occur in the contract
        elif field.is_repeated:
            for item, item_data in zip(value, data[field.name], strict=False):
                if isinstance(item_data, dict):
                    _integers_in_json(item, item_data)
        elif isinstance(data[field.name], dict):
            _integers_in_json(value, data[field.name])
