"""SendStreamingMessage and SendMessage against a real node with the a2a-sdk client over gRPC:
the stream's order, artifacts in chunks, the result as an artifact, blocking and not."""

from __future__ import annotations

from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import value_to_python
from tests.a2a.conftest import ClientMaker
from tests.a2a.helpers import (
    collapse,
    collect,
    data_message,
    kinds,
    send_request,
    states,
    text_message,
)


async def test_stream_order_submitted_working_artifacts_completed(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="hello")
    items = await collect(client.send_message(send_request(text_message("ada"))))
    assert kinds(items)[0] == "task"
    task = items[0].task
    assert task.status.state == a2a.TASK_STATE_SUBMITTED
    assert task.id and task.context_id == task.id
    assert collapse(states(items)) == [
        a2a.TASK_STATE_SUBMITTED,
        a2a.TASK_STATE_WORKING,
        a2a.TASK_STATE_COMPLETED,
    ]
    # Artifacts come between WORKING and COMPLETED, and the last item ends the task.
    first_artifact = kinds(items).index("artifact_update")
    assert states(items[:first_artifact])[-1] == a2a.TASK_STATE_WORKING
    assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
    result = [i.artifact_update for i in items if i.HasField("artifact_update")]
    assert result[-1].artifact.artifact_id == "result"
    assert result[-1].last_chunk
    assert result[-1].artifact.parts[0].text == "hello ada"
    assert all(i.status_update.task_id == task.id for i in items if i.HasField("status_update"))


async def test_data_part_inputs_and_json_result(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="emit-many")
    items = await collect(client.send_message(send_request(data_message({"count": 3}))))
    result = [i.artifact_update for i in items if i.HasField("artifact_update")][-1]
    data = [p for p in result.artifact.parts if p.HasField("data")]
    assert value_to_python(data[0].data) == {"emitted": 3}


async def test_a_one_mib_artifact_arrives_in_chunks_and_reassembles(
    a2a_client: ClientMaker,
) -> None:
    size = 1024 * 1024
    client = a2a_client(tenant="big-artifact")
    items = await collect(client.send_message(send_request(data_message({"size": size}))))
    chunks = [
        i.artifact_update
        for i in items
        if i.HasField("artifact_update") and i.artifact_update.artifact.name == "blob.bin"
    ]
    assert len(chunks) >= 4
    assert not chunks[0].append and all(c.append for c in chunks[1:])
    assert [c.last_chunk for c in chunks] == [False] * (len(chunks) - 1) + [True]
    payload = b"".join(p.raw for c in chunks for p in c.artifact.parts)
    assert payload == bytes(i % 251 for i in range(size))
    # GetTask has the whole artifact, reassembled.
    task = await client.get_task(a2a.GetTaskRequest(id=items[0].task.id))
    blob = next(a for a in task.artifacts if a.name == "blob.bin")
    assert b"".join(p.raw for p in blob.parts) == payload
    markdown = next(a for a in task.artifacts if a.name == "markdown")
    assert markdown.parts[0].text.startswith("# report")


async def test_send_message_blocks_until_the_end(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="hello", streaming=False)
    items = await collect(client.send_message(send_request(text_message("bo"))))
    assert len(items) == 1
    task = items[0].task
    assert task.status.state == a2a.TASK_STATE_COMPLETED
    assert task.artifacts[-1].parts[0].text == "hello bo"
    assert next(m.role for m in task.history) == a2a.ROLE_USER


async def test_send_message_return_immediately(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="sleepy", streaming=False)
    request = send_request(data_message({"seconds": 30}), return_immediately=True)
    items = await collect(client.send_message(request))
    task = items[0].task
    assert task.status.state == a2a.TASK_STATE_SUBMITTED
    cancelled = await client.cancel_task(a2a.CancelTaskRequest(id=task.id))
    assert cancelled.status.state == a2a.TASK_STATE_CANCELED


async def test_get_task_history_length(a2a_client: ClientMaker) -> None:
    client = a2a_client(tenant="hello", streaming=False)
    task = (await collect(client.send_message(send_request(text_message("x")))))[0].task
    none = await client.get_task(a2a.GetTaskRequest(id=task.id, history_length=0))
    assert len(none.history) == 0
    full = await client.get_task(a2a.GetTaskRequest(id=task.id))
    assert len(full.history) >= 1
    assert full.status.state == a2a.TASK_STATE_COMPLETED
