"""A launch forwarded to a peer brings its input files (the peer pulls them from the
forwarding node over mTLS, hashes checked, as files of the launching user that spend the
user's file quota there); the outputs of the forwarded run are listed and downloaded
through the node the client used. Real registry, two nodes, Ray."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from kodoclient.files import FilesClient
from kodosumi.jsonvalue import value_to_python
from kodosumi.rpc.channel import open_sync_channel
from kodosumi.rpc.status import quota_failures_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, file_pb2, file_pb2_grpc, flow_pb2
from kodosumid.app import NodeApp
from kodosumid.config import FlowEntry
from kodosumid.network.peers import Liveness
from kodosumid.quotas import quotas_config
from tests.files.conftest import RPC_ERRORS, code_of, reason_of
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import collect, eventually
from tests.peers.conftest import Client, Cluster, peer_pki

pytestmark = [pytest.mark.ray]

ECHO = FlowEntry("file-echo", "tests.flowlib:file_echo")
MIB = 1024 * 1024
# Each user's files, on either node.
USER_FILE_BYTES = 2 * MIB
QUOTAS = quotas_config({"file_bytes": USER_FILE_BYTES})


@dataclass
class Forwarding:
    a: NodeApp
    b: NodeApp
    user: Client
    files: FilesClient
    tls: TlsMaterial
    cluster: Cluster


@pytest.fixture(scope="module")
async def forwarding(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Forwarding]:
    folder = tmp_path_factory.mktemp("file-forwarding")
    cluster = Cluster(peer_pki(folder / "pki"), folder)
    try:
        registry = await cluster.registry()
        b = await cluster.node("node-b", (ECHO,), registry=registry, quotas=QUOTAS)
        a = await cluster.node("node-a", tuple(TEST_FLOWS[:1]), registry=registry, quotas=QUOTAS)
        assert a.network is not None and b.network is not None
        a_table, b_table = a.network.table, b.network.table

        async def both_see_each_other() -> bool:
            pb, pa = a_table.get("node-b"), b_table.get("node-a")
            return (
                pb is not None
                and pa is not None
                and pb.liveness is Liveness.ALIVE
                and "file-echo" in pb.flows
            )

        await eventually(both_see_each_other, timeout=20)
        tls = cluster.pki.pki.user("alice")
        user = cluster.client(a.address, tls)
        sync = open_sync_channel(a.address, tls, expect=ServerExpectation.node())
        files = FilesClient(user.channel, upload_channel=lambda: sync)
        yield Forwarding(a, b, user, files, tls, cluster)
        sync.close()
    finally:
        await cluster.close()


async def test_a_forwarded_run_brings_its_input_and_its_output_comes_back(
    forwarding: Forwarding, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 3000  # 768000 bytes: several chunks
    doc = await forwarding.files.upload(data, name="table.bin")
    launched = await forwarding.user.flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": doc.file_id}, inputs=None),
        timeout=60,
    )
    execution = launched.execution
    assert execution.node_id == "node-a"
    events = await collect(forwarding.user.flows, execution.execution_id, timeout=120)
    last = events[-1].status_changed
    assert last.status == event_pb2.EXECUTION_STATUS_SUCCEEDED, last.reason
    result = value_to_python(next(e.result.json for e in events if e.HasField("result")))
    assert result["files"]["doc"]["size"] == len(data)

    # The peer holds a copy of the input (pulled, hash checked), the user's: it counts
    # against the user's file quota there.
    b_files = forwarding.b.files
    assert b_files is not None
    listed_on_b = await b_files.store.files_of(execution.execution_id)
    inputs = [r for link, r in listed_on_b if link.direction == "in"]
    assert [r.sha256 for r in inputs] == [hashlib.sha256(data).hexdigest()]
    assert inputs[0].owner.endswith("/user/alice")
    assert await b_files.store.stored_bytes(inputs[0].owner) == len(data)

    # Through node A: the listing and the output's download come from the peer.
    listed = await forwarding.files.list(execution.execution_id)
    assert [(f.name, f.direction, f.node_id) for f in listed] == [
        ("doc", file_pb2.FILE_DIRECTION_INPUT, "node-b"),
        ("doc.out", file_pb2.FILE_DIRECTION_OUTPUT, "node-b"),
    ]
    out = listed[1]
    request = file_pb2.DownloadFileRequest(
        file_id=out.file_id, execution_id=execution.execution_id, offset=1000
    )
    stub = file_pb2_grpc.FileServiceStub(forwarding.user.channel)
    got = b"".join([r.chunk async for r in stub.DownloadFile(request)])
    assert got == data[1000:]
    # Without the execution, node A does not know the file.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [r async for r in stub.DownloadFile(file_pb2.DownloadFileRequest(file_id=out.file_id))]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_peer_reads_only_what_was_forwarded_to_it(forwarding: Forwarding) -> None:
    secret = await forwarding.files.upload(b"not for peers", name="secret.txt")
    # Node B asking node A for a file no launch forwarded to it: NOT_FOUND.
    b_client = forwarding.cluster.client(
        forwarding.a.address, forwarding.cluster.pki.pki.node("node-b")
    )
    stub = file_pb2_grpc.FileServiceStub(b_client.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.StatFile(file_pb2.StatFileRequest(file_id=secret.file_id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Another user of node A neither.
    bob = forwarding.cluster.client(forwarding.a.address, forwarding.cluster.pki.pki.user("bob"))
    with pytest.raises(RPC_ERRORS) as caught2:
        await file_pb2_grpc.FileServiceStub(bob.channel).StatFile(
            file_pb2.StatFileRequest(file_id=secret.file_id), timeout=10
        )
    assert code_of(caught2.value) == grpc.StatusCode.NOT_FOUND


async def _forward(user: Client, file_id: str) -> str:
    launched = await user.flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": file_id}), timeout=60
    )
    events = await collect(user.flows, launched.execution.execution_id, timeout=120)
    assert events[-1].status_changed.status == event_pb2.EXECUTION_STATUS_SUCCEEDED
    return launched.execution.execution_id


async def test_a_full_quota_on_one_node_is_not_escaped_through_a_peer(
    forwarding: Forwarding,
) -> None:
    """Mallory fills her file quota on node A, frees it there by deleting the run that
    took her file to node B, and forwards another: node B holds her to her quota there."""
    tls = forwarding.cluster.pki.pki.user("mallory")
    mallory = forwarding.cluster.client(forwarding.a.address, tls)
    sync = open_sync_channel(forwarding.a.address, tls, expect=ServerExpectation.node())
    files = FilesClient(mallory.channel, upload_channel=lambda: sync)
    b_files = forwarding.b.files
    assert b_files is not None
    try:
        first = await files.upload(b"\x01" * (3 * MIB // 2), name="first.bin")
        execution_id = await _forward(mallory, first.file_id)
        with pytest.raises(RPC_ERRORS) as full:
            await files.upload(b"\x02" * MIB, name="second.bin")
        assert reason_of(full.value) == "QUOTA_FILE_BYTES"
        # Deleting the run frees her quota on node A; node B still holds her first file.
        await mallory.flows.DeleteExecution(
            flow_pb2.DeleteExecutionRequest(execution_id=execution_id), timeout=30
        )
        second = await files.upload(b"\x02" * MIB, name="second.bin")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mallory.flows.LaunchExecution(
                flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": second.file_id}),
                timeout=60,
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(caught.value) == "QUOTA_FILE_BYTES"
        assert "mallory" in (caught.value.details() or "")
        assert quota_failures_of(caught.value) == [("file_bytes", USER_FILE_BYTES)]
        # Nothing of the refused file reached node B.
        mallory_id = str(SpiffeId.user(forwarding.cluster.pki.domain, "mallory"))
        assert await b_files.store.stored_bytes(mallory_id) == 3 * MIB // 2
        assert not b_files.blobs.exists(second.sha256)
        assert list(b_files.blobs.tmp_dir.iterdir()) == []
    finally:
        sync.close()
        await mallory.close()
