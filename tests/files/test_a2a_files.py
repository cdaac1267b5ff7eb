"""A2A file parts on the file store: a message's inline file part becomes the task's input
file (`ctx.files[filename]`), and the flow's output file comes back as an artifact part
naming the file, which the caller then downloads with FileService. Real node, mTLS, Ray."""

from __future__ import annotations

import uuid

import pytest
from a2a.types import a2a_pb2 as a2a
from a2a.types import a2a_pb2_grpc

from tests.files.conftest import files_client
from tests.node.conftest import RunningNode

pytestmark = [pytest.mark.ray]
METADATA = (("a2a-version", "1.0"),)


async def test_a_file_part_goes_in_and_an_output_file_comes_out(files_node: RunningNode) -> None:
    stub = a2a_pb2_grpc.A2AServiceStub(files_node.channel)  # type: ignore[no-untyped-call]
    data = b"a file sent over A2A\n" * 100
    message = a2a.Message(
        message_id=uuid.uuid4().hex,
        role=a2a.ROLE_USER,
        parts=[a2a.Part(raw=data, filename="notes.txt", media_type="text/plain")],
    )
    request = a2a.SendMessageRequest(tenant="file-echo", message=message)
    items = [r async for r in stub.SendStreamingMessage(request, metadata=METADATA, timeout=120)]
    states = [i.status_update.status.state for i in items if i.HasField("status_update")]
    assert states[-1] == a2a.TASK_STATE_COMPLETED, states
    files = [
        p
        for i in items
        if i.HasField("artifact_update")
        for p in i.artifact_update.artifact.parts
        if p.url
    ]
    assert [(p.filename, p.media_type) for p in files] == [("notes.txt.out", "text/plain")]
    part = files[0]
    node_id = files_node.app.config.node_id
    file_id = part.metadata["file_id"]
    assert part.url == f"kodosumi-file://{node_id}/{file_id}"
    assert await files_client(files_node).read(file_id) == data
    # The task's execution lists the part as its input file.
    task_id = next(i.task.id for i in items if i.HasField("task"))
    listed = await files_client(files_node).list(task_id)
    assert [(f.name, f.size) for f in listed] == [
        ("notes.txt", len(data)),
        ("notes.txt.out", len(data)),
    ]


async def test_a_bad_file_part_name_is_invalid_params(files_node: RunningNode) -> None:
    stub = a2a_pb2_grpc.A2AServiceStub(files_node.channel)  # type: ignore[no-untyped-call]
    message = a2a.Message(
        message_id=uuid.uuid4().hex,
        role=a2a.ROLE_USER,
        parts=[a2a.Part(raw=b"x", filename="../etc/passwd")],
    )
    request = a2a.SendMessageRequest(tenant="file-echo", message=message)
    with pytest.raises(Exception) as caught:
        await stub.SendMessage(request, metadata=METADATA, timeout=30)
    assert caught.value.code().name == "INVALID_ARGUMENT"  # type: ignore[attr-defined]
    assert "filename" in caught.value.details()  # type: ignore[attr-defined]
