"""Files on an external Ray cluster (`ray start --head` on loopback): the node is one
process (a `kodosumid` daemon), the executor another (a Ray actor of the cluster). The flow
reads the uploaded input from a read-only local path the executor fetched from the node over
mTLS, writes an output, and the client downloads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kodoclient.files import FilesClient
from kodosumi.jsonvalue import value_to_python
from kodosumi.rpc.channel import open_channel, open_sync_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import dev_client_files
from kodosumi.v1 import event_pb2, file_pb2, flow_pb2, flow_pb2_grpc
from tests.node.helpers import collect
from tests.node.test_daemon import REPO, Daemon

CONFIG = """
[node]
id = "files-cluster-node"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[ray]
address = "{address}"

[pool]
shared_executors = 1
warm_executors = 0

[[flows]]
name = "file-echo"
entrypoint = "tests.flowlib:file_echo"
"""


@pytest.mark.slow
async def test_a_flow_on_a_cluster_reads_an_input_and_writes_an_output(
    ray_head: str, tmp_path: Path
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG.format(repo=REPO, address=ray_head))
    node = Daemon(tmp_path / "state", config)
    node.state_dir.mkdir()
    try:
        node.start()
        tls = dev_client_files(node.state_dir).read()
        channel = open_channel(node.address, tls, expect=ServerExpectation.node())
        sync = open_sync_channel(node.address, tls, expect=ServerExpectation.node())
        files = FilesClient(channel, upload_channel=lambda: sync)
        data = os.urandom(3 * 1024 * 1024 + 7)
        doc = await files.upload(data, name="input.bin")
        flows = flow_pb2_grpc.FlowServiceStub(channel)
        launched = await flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": doc.file_id}),
            timeout=60,
        )
        execution_id = launched.execution.execution_id
        events = await collect(flows, execution_id, timeout=180)  # type: ignore[arg-type]
        last = events[-1].status_changed
        assert last.status == event_pb2.EXECUTION_STATUS_SUCCEEDED, last.reason
        result = value_to_python(next(e.result.json for e in events if e.HasField("result")))
        assert node.process is not None
        assert result["pid"] not in (os.getpid(), node.process.pid)  # the executor's own
        assert result["files"]["doc"] == {
            "size": len(data),
            "writable": False,
            "out": result["files"]["doc"]["out"],
        }
        outputs = await files.list(execution_id, file_pb2.FILE_DIRECTION_OUTPUT)
        assert [f.name for f in outputs] == ["doc.out"]
        dest = tmp_path / "doc.out"
        await files.download(outputs[0].file_id, dest)
        assert dest.read_bytes() == data
        await channel.close()
        sync.close()
    finally:
        node.stop()
