"""`record`: a protobuf message as the plain JSON data `--json` prints."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message


def record(message: Message) -> dict[str, Any]:
    """The proto3 JSON mapping of a message (field names as in the .proto), for --json."""
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return data
