"""Building A2A requests and reading streams in the tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import python_to_value

TERMINAL = {
    a2a.TASK_STATE_COMPLETED,
    a2a.TASK_STATE_FAILED,
    a2a.TASK_STATE_CANCELED,
    a2a.TASK_STATE_REJECTED,
}


def data_message(data: Any, task_id: str = "") -> a2a.Message:
    part = a2a.Part()
    python_to_value(data, part.data)
    return a2a.Message(
        message_id=uuid.uuid4().hex, role=a2a.ROLE_USER, parts=[part], task_id=task_id
    )


def text_message(text: str, task_id: str = "") -> a2a.Message:
    return a2a.Message(
        message_id=uuid.uuid4().hex,
        role=a2a.ROLE_USER,
        parts=[a2a.Part(text=text)],
        task_id=task_id,
    )


def send_request(message: a2a.Message, **configuration: Any) -> a2a.SendMessageRequest:
    return a2a.SendMessageRequest(
        message=message, configuration=a2a.SendMessageConfiguration(**configuration)
    )


async def collect(stream: AsyncIterator[a2a.StreamResponse]) -> list[a2a.StreamResponse]:
    return [item async for item in stream]


def kinds(items: list[a2a.StreamResponse]) -> list[str]:
    return [str(i.WhichOneof("payload")) for i in items]


def states(items: list[a2a.StreamResponse]) -> list[int]:
    """The task's state as the stream tells it: the Task's first, then each status update's."""
    found = []
    for item in items:
        if item.HasField("task"):
            found.append(item.task.status.state)
        elif item.HasField("status_update"):
            found.append(item.status_update.status.state)
    return found


def collapse(values: list[int]) -> list[int]:
    out: list[int] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out
