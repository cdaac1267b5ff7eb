"""Files into and out of executions on a real node with Ray: the flow reads `ctx.files`,
writes with `ctx.save_file`, the client lists and downloads what it wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.jsonvalue import value_to_python
from kodosumi.v1 import event_pb2, file_pb2, flow_pb2
from tests.files.conftest import (
    FILE_FLOWS,
    RPC_ERRORS,
    code_of,
    details_of_error,
    files_client,
    reason_of,
)
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually
from tests.node.users import User

pytestmark = [pytest.mark.ray]


async def _run(node: RunningNode, flow: str, files: dict[str, str]) -> list[event_pb2.Event]:
    launched = await node.flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow=flow, files=files), timeout=30
    )
    return await collect(node.flows, launched.execution.execution_id, timeout=120)


def _status(events: list[event_pb2.Event]) -> tuple[int, str]:
    last = events[-1].status_changed
    return last.status, last.reason


async def test_a_flow_reads_an_input_and_writes_an_output(
    files_node: RunningNode, tmp_path: Path
) -> None:
    files = files_client(files_node)
    csv = b"city,people\nBern,134000\nBasel,173000\n"
    doc = await files.upload(csv, name="cities.csv")
    assert doc.media_type == "text/csv"
    events = await _run(files_node, "summarize-file", {"document": doc.file_id})
    assert _status(events)[0] == event_pb2.EXECUTION_STATUS_SUCCEEDED, _status(events)
    execution_id = events[0].execution_id
    artifacts = [e.artifact for e in events if e.HasField("artifact")]
    assert [(a.name, a.media_type, bool(a.data)) for a in artifacts] == [
        ("summary.md", "text/markdown", False)
    ]
    out = artifacts[0]
    assert out.file_id and out.node_id == files_node.app.config.node_id
    listed = await files.list(execution_id)
    assert [(f.name, f.direction) for f in listed] == [
        ("document", file_pb2.FILE_DIRECTION_INPUT),
        ("summary.md", file_pb2.FILE_DIRECTION_OUTPUT),
    ]
    assert listed[0].file_id == doc.file_id and listed[1].file_id == out.file_id
    dest = tmp_path / "summary.md"
    info = await files.download(out.file_id, dest)
    assert info.sha256 == out.sha256 and info.size == out.total_size == dest.stat().st_size
    text = dest.read_text()
    assert "cities.csv (37 bytes)" in text and "rows: 2, columns: 2" in text
    outputs = await files.list(execution_id, file_pb2.FILE_DIRECTION_OUTPUT)
    assert [f.name for f in outputs] == ["summary.md"]


async def test_input_paths_are_read_only_and_outputs_belong_to_the_owner(
    files_node: RunningNode,
) -> None:
    ann = User(files_node, "ann-flows")
    try:
        files = files_client(ann)
        one = await files.upload(b"\x00\x01binary", name="one.bin")
        two = await files.upload(b"", name="empty.txt")
        launched = await ann.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(
                flow="file-echo", files={"one": one.file_id, "two": two.file_id}
            ),
            timeout=30,
        )
        events = await collect(ann.flows, launched.execution.execution_id, timeout=120)
        assert _status(events)[0] == event_pb2.EXECUTION_STATUS_SUCCEEDED, _status(events)
        result = value_to_python(next(e.result.json for e in events if e.HasField("result")))
        assert result["pid"] != os.getpid()  # the executor is another process
        assert {k: (v["size"], v["writable"]) for k, v in result["files"].items()} == {
            "one": (8, False),
            "two": (0, False),
        }
        for name, original in (("one", b"\x00\x01binary"), ("two", b"")):
            out = await files.stat(result["files"][name]["out"])
            assert out.owner == str(ann.identity)
            assert await files.read(out.file_id) == original
    finally:
        await ann.close()


async def test_a_launch_may_not_name_another_users_file(files_node: RunningNode) -> None:
    ann, bob = User(files_node, "ann-launch"), User(files_node, "bob-launch")
    try:
        secret = await files_client(ann).upload(b"ann only", name="a.txt")
        with pytest.raises(RPC_ERRORS) as caught:
            await bob.flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"x": secret.file_id}),
                timeout=30,
            )
        assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND
        assert reason_of(caught.value) == "FILE_NOT_FOUND"
        with pytest.raises(RPC_ERRORS) as caught:
            await bob.flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"a/b": secret.file_id}),
                timeout=30,
            )
        assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
        assert "files.a/b" in details_of_error(caught.value)
        # Bob may not add outputs to ann's executions either.
        launched = await ann.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="hello"), timeout=30
        )
        with pytest.raises(RPC_ERRORS) as caught:
            await files_client(bob).upload(
                b"forged", name="x.txt", execution_id=launched.execution.execution_id
            )
        assert code_of(caught.value) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await ann.close()
        await bob.close()


async def test_files_go_when_their_execution_is_deleted(files_node: RunningNode) -> None:
    files = files_client(files_node)
    doc = await files.upload(b"short lived", name="x.txt")
    events = await _run(files_node, "file-echo", {"x": doc.file_id})
    assert _status(events)[0] == event_pb2.EXECUTION_STATUS_SUCCEEDED, _status(events)
    execution_id = events[0].execution_id
    listed = await files.list(execution_id)
    assert len(listed) == 2
    await files_node.flows.DeleteExecution(
        flow_pb2.DeleteExecutionRequest(execution_id=execution_id), timeout=30
    )
    for f in listed:
        with pytest.raises(RPC_ERRORS) as caught:
            await files.stat(f.file_id)
        assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND
    blobs = files_node.app.config.state_dir / "files" / "blobs"
    assert not (blobs / doc.sha256[:2] / doc.sha256).exists()


async def test_a_crewai_crew_reads_an_input_and_its_outputs_become_files(
    files_node: RunningNode,
) -> None:
    files = files_client(files_node)
    notes = await files.upload(b"minutes: ship the file service", name="notes.txt")
    events = await _run(files_node, "file-crew", {"notes": notes.file_id})
    assert _status(events)[0] == event_pb2.EXECUTION_STATUS_SUCCEEDED, _status(events)
    read = [e.tool_call for e in events if e.HasField("tool_call") and e.tool_call.result]
    assert any("ship the file service" in c.result for c in read)
    outputs = await files.list(events[0].execution_id, file_pb2.FILE_DIRECTION_OUTPUT)
    assert sorted(f.name for f in outputs) == ["digest.txt", "report.md"]
    digest = next(f for f in outputs if f.name == "digest.txt")
    assert await files.read(digest.file_id) == b"DIGEST"


async def test_files_are_purged_with_their_executions_by_retention(start_node: Any) -> None:
    node = await start_node(flows=FILE_FLOWS, retention_seconds=1.0)
    files = files_client(node)
    doc = await files.upload(b"kept one second after the run", name="r.txt")
    events = await _run(node, "file-echo", {"r": doc.file_id})
    assert _status(events)[0] == event_pb2.EXECUTION_STATUS_SUCCEEDED, _status(events)
    listed = await files.list(events[0].execution_id)
    assert len(listed) == 2
    blobs = node.app.config.state_dir / "files" / "blobs"

    async def purged() -> bool:
        return not any((blobs / f.sha256[:2] / f.sha256).exists() for f in listed)

    await eventually(purged, timeout=30)
    for f in listed:
        with pytest.raises(RPC_ERRORS) as caught:
            await files.stat(f.file_id)
        assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND
