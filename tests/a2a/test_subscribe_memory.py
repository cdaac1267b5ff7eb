"""SubscribeToTask holds a bounded amount per stream (issue 11): many subscribers that read
nothing, on an open task with a large artifact, cost the node little memory, and a reading
subscriber still gets the whole artifact, replayed as updates after the Task."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from a2a.types import a2a_pb2 as a2a

from kodosumi.v1 import event_pb2, flow_pb2
from tests.a2a.conftest import ClientMaker
from tests.a2a.helpers import collect, data_message, send_request, text_message
from tests.memory import peak_rss, settled_rss
from tests.node.conftest import RunningNode
from tests.node.helpers import eventually

SIZE = 16 * 1024 * 1024
SUBSCRIBERS = 12


async def _blob(stream: AsyncIterator[a2a.StreamResponse], task_id: str) -> bytes:
    """The artifact `blob.bin` as a reading subscriber gets it (after the Task)."""
    first = await anext(stream)
    assert first.HasField("task") and first.task.id == task_id
    assert not first.task.artifacts  # replayed below, not carried in the Task
    assert first.task.status.state == a2a.TASK_STATE_INPUT_REQUIRED
    payload = b""
    async for item in stream:
        update = item.artifact_update
        if item.HasField("artifact_update") and update.artifact.name == "blob.bin":
            payload += b"".join(p.raw for p in update.artifact.parts)
            if update.last_chunk:
                return payload
    raise AssertionError("the stream ended before the artifact did")


async def test_unread_subscribers_of_a_large_task_hold_little(
    a2a_node: RunningNode, a2a_client: ClientMaker
) -> None:
    starter = a2a_client(tenant="big-then-asks", streaming=False)
    request = send_request(data_message({"size": SIZE}), return_immediately=True)
    task_id = (await collect(starter.send_message(request)))[0].task.id

    async def asks() -> bool:
        response = await a2a_node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=task_id), timeout=10
        )
        return response.execution.status == event_pb2.EXECUTION_STATUS_AWAITING_INPUT

    await eventually(asks, timeout=60)
    pid = os.getpid()  # the node runs in this process
    before = await settled_rss(pid)
    client = a2a_client(tenant="big-then-asks")
    subscription = a2a.SubscribeToTaskRequest(id=task_id)
    streams = [client.subscribe(subscription) for _ in range(SUBSCRIBERS)]
    try:
        for stream in streams:  # each opened (the Task read), then left unread
            first = await asyncio.wait_for(anext(stream), timeout=30)
            assert first.HasField("task") and not first.task.artifacts
        peak = await peak_rss(pid, seconds=3.0)
        growth = peak - before
        print(
            f"process RSS {before / 2**20:.0f} -> {peak / 2**20:.0f} MiB with {SUBSCRIBERS} "
            f"unread subscribers of a {SIZE / 2**20:.0f} MiB artifact"
        )
        # Accumulating the task would hold the artifact per stream (12 x 16 MiB, twice over).
        assert growth <= 96 * 1024 * 1024, f"the node grew {growth / 2**20:.0f} MiB"
        reader = client.subscribe(subscription)
        payload = await asyncio.wait_for(_blob(reader, task_id), timeout=60)
        assert payload == bytes(i % 251 for i in range(SIZE))
        await reader.aclose()  # type: ignore[attr-defined]
    finally:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
    answer = send_request(text_message("yes", task_id), return_immediately=True)
    await collect(starter.send_message(answer))
