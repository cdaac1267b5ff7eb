"""Building the A2A parts, messages and result artifact the node sends (pure, no gRPC)."""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import python_to_value
from kodosumi.v1 import event_pb2

RESULT_ARTIFACT_ID = "result"


def text_part(text: str, media_type: str = "") -> a2a.Part:
    return a2a.Part(text=text, media_type=media_type)


def data_part(data: Any) -> a2a.Part:
    part = a2a.Part()
    python_to_value(data, part.data)
    return part


def agent_message(message_id: str, task_id: str, parts: list[a2a.Part]) -> a2a.Message:
    return a2a.Message(
        message_id=message_id,
        task_id=task_id,
        context_id=task_id,
        role=a2a.ROLE_AGENT,
        parts=parts,
    )


def result_artifact(result: event_pb2.Result) -> a2a.Artifact:
    """The execution's result as the artifact `result`: markdown or text, and JSON as data."""
    parts: list[a2a.Part] = []
    if result.markdown:
        parts.append(text_part(result.markdown, "text/markdown"))
    elif result.text and not result.has_json:
        parts.append(text_part(result.text, "text/plain"))
    if result.has_json:
        part = a2a.Part(media_type="application/json")
        part.data.CopyFrom(result.json)
        parts.append(part)
    if not parts:
        parts.append(text_part(""))
    return a2a.Artifact(artifact_id=RESULT_ARTIFACT_ID, name="result", parts=parts)
