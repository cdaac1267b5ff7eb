"""Who may call FileService, over mTLS against a real node: rejected handshakes, identities
without the right, a flow identity reading only its own executions' files, a registry
identity refused by the table, a user naming someone else as whom a launch is for."""

from __future__ import annotations

import grpc
import pytest

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument
from kodosumi.pki import CertificateAuthority, cert_pem, create_ca, key_pem
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial, pki_dir
from kodosumi.v1 import event_pb2, file_pb2, file_pb2_grpc, flow_pb2
from kodosumid.files.peer_pull import _owner
from kodosumid.network.peer_client import FORWARDED_FOR
from tests.files.conftest import files_client
from tests.node.conftest import RunningNode
from tests.node.helpers import collect
from tests.node.users import User

pytestmark = [pytest.mark.ray]


def _ca(node: RunningNode) -> CertificateAuthority:
    d = pki_dir(node.app.config.state_dir)
    return CertificateAuthority.load(d / "ca.pem", d / "ca.key")


def _material(ca: CertificateAuthority, identity: SpiffeId) -> TlsMaterial:
    cert, key = ca.issue(identity)
    return TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))


def _stub(node: RunningNode, tls: TlsMaterial) -> tuple[grpc.aio.Channel, object]:
    channel = open_channel(node.app.address, tls, expect=ServerExpectation.node())
    return channel, file_pb2_grpc.FileServiceStub(channel)


async def _stat_code(node: RunningNode, tls: TlsMaterial, file_id: str) -> grpc.StatusCode:
    channel, stub = _stub(node, tls)
    try:
        await stub.StatFile(file_pb2.StatFileRequest(file_id=file_id), timeout=10)  # type: ignore[attr-defined]
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as e:
        return e.code()
    finally:
        await channel.close()


async def test_the_handshake_and_the_table_refuse_strangers(files_node: RunningNode) -> None:
    info = await files_client(files_node).upload(b"guarded", name="g.txt")
    ca = _ca(files_node)
    domain = ca.trust_domain
    # A certificate of another CA: the TLS handshake fails (UNAVAILABLE).
    other = CertificateAuthority(*create_ca(domain))
    foreign = _material(other, SpiffeId.user(domain, "mallory"))
    foreign = TlsMaterial(cert_pem(ca.cert), foreign.cert, foreign.key)
    assert await _stat_code(files_node, foreign, info.file_id) == grpc.StatusCode.UNAVAILABLE
    # A registry identity of the right CA: not in the node's table for FileService.
    registry = _material(ca, SpiffeId.registry(domain, "reg"))
    assert await _stat_code(files_node, registry, info.file_id) == grpc.StatusCode.PERMISSION_DENIED
    # Another node of the domain, without a grant: NOT_FOUND, as for a missing file.
    peer = _material(ca, SpiffeId.node(domain, "some-peer"))
    assert await _stat_code(files_node, peer, info.file_id) == grpc.StatusCode.NOT_FOUND


async def test_a_flow_identity_reads_only_its_own_executions_files(
    files_node: RunningNode,
) -> None:
    admin = files_client(files_node)
    doc = await admin.upload(b"for file-echo only", name="doc.txt")
    launched = await files_node.flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": doc.file_id}), timeout=30
    )
    events = await collect(files_node.flows, launched.execution.execution_id, timeout=120)
    assert events[-1].status_changed.status == event_pb2.EXECUTION_STATUS_SUCCEEDED
    ca = _ca(files_node)
    node_id = files_node.app.config.node_id
    own = _material(ca, SpiffeId.flow(ca.trust_domain, node_id, "file-echo"))
    other = _material(ca, SpiffeId.flow(ca.trust_domain, node_id, "hello"))
    elsewhere = _material(ca, SpiffeId.flow(ca.trust_domain, "other-node", "file-echo"))
    assert await _stat_code(files_node, own, doc.file_id) == grpc.StatusCode.OK
    assert await _stat_code(files_node, other, doc.file_id) == grpc.StatusCode.NOT_FOUND
    assert await _stat_code(files_node, elsewhere, doc.file_id) == grpc.StatusCode.NOT_FOUND
    # The other flow may not add outputs to file-echo's execution either.
    channel, stub = _stub(files_node, other)
    try:

        async def requests():  # type: ignore[no-untyped-def]
            yield file_pb2.UploadFileRequest(
                header=file_pb2.UploadFileHeader(
                    name="x",
                    size=0,
                    sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    execution_id=launched.execution.execution_id,
                )
            )

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UploadFile(requests(), timeout=10)  # type: ignore[attr-defined]
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await channel.close()


async def test_a_user_cannot_launch_with_files_for_someone_else(files_node: RunningNode) -> None:
    """`kodosumi-forwarded-for` is what a peer node says; from a user it changes nothing:
    naming another user gets her neither that user's files nor that user's quota."""
    ann, bob = User(files_node, "ann-fwd"), User(files_node, "bob-fwd")
    try:
        anns = await files_client(ann).upload(b"ann's notes", name="notes.txt")
        request = flow_pb2.LaunchExecutionRequest(flow="file-echo", files={"doc": anns.file_id})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bob.flows.LaunchExecution(
                request, timeout=30, metadata=((FORWARDED_FOR, str(ann.identity)),)
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "files.doc" in (caught.value.details() or "")
    finally:
        await ann.close()
        await bob.close()


def test_the_user_a_peer_names_must_be_of_its_trust_domain() -> None:
    node = Principal(SpiffeId.node("a.test", "node-a"), frozenset({"node"}))
    assert _owner(node, "") == "spiffe://a.test/node/node-a"
    assert _owner(node, "spiffe://a.test/user/alice") == "spiffe://a.test/user/alice"
    for bad in ("alice", "spiffe://b.test/user/alice"):
        with pytest.raises(InvalidArgument, match="forwarded_for"):
            _owner(node, bad)
