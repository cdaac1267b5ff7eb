"""Clients check whom they talk to (issue 11, item 3): a server with a certificate of the right
CA and the right host names, but another identity or kind, is refused before any request
reaches it — by `koco launch`, `koco whoami --registry` and a node dialling a peer — with
UNAVAILABLE naming both identities; so do a node dialling its registry or auth provider and
`ctx.call_flow` dialling its own node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from kodoclient.cli import exit_codes as ec
from kodoclient.cli import main
from kodosumi.errors import KodosumiError
from kodosumi.pki import CertificateAuthority, cert_pem, issue_certificate, key_pem
from kodosumi.pki import generate_private_key as new_key
from kodosumi.rpc.identity_check import REASON
from kodosumi.rpc.status import details_of
from kodosumi.server_identity import ServerExpectation, identity_name
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, auth_pb2_grpc, flow_pb2, flow_pb2_grpc, node_pb2
from kodosumid.auth.client import AuthClient
from kodosumid.executors.caller_settings import CallerSettings
from kodosumid.executors.flow_caller import GrpcFlowCaller
from kodosumid.network.peer_client import PeerLinks
from kodosumid.network.registry_client import RegistryClient

DOMAIN = "ids.kodosumi"


@dataclass
class Capture:
    """What a fake server received (it must receive nothing)."""

    calls: list[str] = field(default_factory=list)


class FakeFlows(flow_pb2_grpc.FlowServiceServicer):
    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    async def LaunchExecution(self, request: Any, context: Any) -> Any:
        self.capture.calls.append(f"launch {request.flow} {request.inputs}")
        return flow_pb2.LaunchExecutionResponse()


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    async def WhoAmI(self, request: Any, context: Any) -> Any:
        self.capture.calls.append("whoami")
        return auth_pb2.WhoAmIResponse(identity="spiffe://ids.kodosumi/user/you")


@dataclass
class Pki:
    ca: CertificateAuthority
    folder: Path

    def material(self, identity: SpiffeId, *, hosts: bool = True) -> TlsMaterial:
        key = new_key()
        cert = issue_certificate(
            self.ca.cert,
            self.ca.key,
            key.public_key(),
            identity,
            # The right host names: only the identity may tell the fake apart.
            dns_names=("localhost",) if hosts else (),
            ip_addresses=("127.0.0.1",) if hosts else (),
        )
        return TlsMaterial(cert_pem(self.ca.cert), cert_pem(cert), key_pem(key))

    def files(self, name: str, material: TlsMaterial) -> list[str]:
        paths = []
        for suffix, data in (("ca", material.ca_cert), ("pem", material.cert)):
            path = self.folder / f"{name}.{suffix}"
            path.write_bytes(data)
            paths.append(str(path))
        key = self.folder / f"{name}.key"
        key.write_bytes(material.key)
        key.chmod(0o600)
        return ["--ca", paths[0], "--cert", paths[1], "--key", str(key)]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority.create(DOMAIN, tmp_path / "ca.pem", tmp_path / "ca.key")
    return Pki(ca, tmp_path)


FakeFactory = Callable[[SpiffeId], "asyncio.Future[str]"]


@pytest.fixture
async def fake_server(pki: Pki) -> AsyncIterator[tuple[Capture, Callable[..., Any]]]:
    servers: list[grpc.aio.Server] = []
    capture = Capture()

    async def start(identity: SpiffeId) -> str:
        material = pki.material(identity)
        server = grpc.aio.server()
        flow_pb2_grpc.add_FlowServiceServicer_to_server(FakeFlows(capture), server)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(FakeAuth(capture), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
        credentials = grpc.ssl_server_credentials(
            [(material.key, material.cert)],
            root_certificates=material.ca_cert,
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield capture, start
    for server in servers:
        await server.stop(0)


async def koco(*args: str) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(main, ["--timeout", "5", *args], catch_exceptions=False)

    return await asyncio.to_thread(invoke)


def test_server_certificates_carry_their_identity_names_only(pki: Pki) -> None:
    node = SpiffeId.node(DOMAIN, "n1")
    material = pki.material(node)
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(material.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    assert identity_name(node) in dns
    assert ServerExpectation.node().check_name(DOMAIN) in dns
    assert ServerExpectation.registry().check_name(DOMAIN) not in dns
    assert identity_name(SpiffeId.node(DOMAIN, "n2")) not in dns


async def test_koco_launch_refuses_a_server_that_is_not_a_node(
    pki: Pki, tmp_path: Path, fake_server: tuple[Capture, Callable[..., Any]]
) -> None:
    capture, start = fake_server
    # A registry's certificate with the node's host names: a server, but not a node.
    address = await start(SpiffeId.registry(DOMAIN, "r1"))
    me = pki.files("alice", pki.material(SpiffeId.user(DOMAIN, "alice"), hosts=False))
    result = await koco(
        "--state-dir",
        str(tmp_path / "state"),
        "--node",
        address,
        *me,
        "launch",
        "hello",
        "--input",
        "secret=hunter2",
    )
    assert result.exit_code == ec.UNREACHABLE.code, result.output
    assert f"spiffe://{DOMAIN}/registry/r1" in result.output
    assert f"any node of spiffe://{DOMAIN}" in result.output
    assert capture.calls == []


async def test_koco_whoami_refuses_a_node_posing_as_the_registry(
    pki: Pki, tmp_path: Path, fake_server: tuple[Capture, Callable[..., Any]]
) -> None:
    capture, start = fake_server
    address = await start(SpiffeId.node(DOMAIN, "mallory"))
    me = pki.files("alice", pki.material(SpiffeId.user(DOMAIN, "alice"), hosts=False))
    result = await koco("--state-dir", str(tmp_path / "s"), *me, "whoami", "--registry", address)
    assert result.exit_code == ec.UNREACHABLE.code, result.output
    assert f"spiffe://{DOMAIN}/node/mallory" in result.output
    assert f"any registry of spiffe://{DOMAIN}" in result.output
    assert capture.calls == []


async def test_a_node_refuses_a_peer_endpoint_held_by_another_node(
    pki: Pki, fake_server: tuple[Capture, Callable[..., Any]]
) -> None:
    capture, start = fake_server
    # The registry says node-b is at this address; node-x (a real node of the domain) answers.
    address = await start(SpiffeId.node(DOMAIN, "node-x"))
    links = PeerLinks(pki.material(SpiffeId.node(DOMAIN, "node-a")))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(links.channel(address, "node-b")).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details_of(refused.value)[0] == REASON
        message = refused.value.details() or ""
        assert f"spiffe://{DOMAIN}/node/node-x" in message
        assert f"spiffe://{DOMAIN}/node/node-b" in message
        # Streams are refused the same way, before the request is served.
        stream = flow_pb2_grpc.FlowServiceStub(links.channel(address, "node-b")).WatchExecution(
            flow_pb2.WatchExecutionRequest(execution_id="e1"), timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await stream.read()
        assert details_of(streamed.value)[0] == REASON
        # The node it expects there is accepted.
        good = await start(SpiffeId.node(DOMAIN, "node-b"))
        response = await health_pb2_grpc.HealthStub(links.channel(good, "node-b")).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await links.close()
    assert capture.calls == []


async def test_a_node_refuses_a_registry_or_auth_provider_that_is_not_its_own(
    pki: Pki, fake_server: tuple[Capture, Callable[..., Any]]
) -> None:
    """Node → registry and node → auth provider: another registry of the domain (not the one
    the node enrolled with) or a node at the registry's address is refused, naming both."""
    capture, start = fake_server
    node_tls = pki.material(SpiffeId.node(DOMAIN, "node-a"))
    for impostor in (SpiffeId.registry(DOMAIN, "reg-evil"), SpiffeId.node(DOMAIN, "node-x")):
        address = await start(impostor)
        registry = RegistryClient(address, node_tls, 5.0, registry_id="reg-1")
        auth = AuthClient(address, node_tls, 5.0, registry_id="reg-1")
        try:
            with pytest.raises(KodosumiError) as refused:
                await registry.register(node_pb2.NodeInfo(node_id="node-a"), 10.0)
            assert str(impostor) in refused.value.message, refused.value.message
            assert f"spiffe://{DOMAIN}/registry/reg-1" in refused.value.message
            with pytest.raises(KodosumiError) as refused_auth:
                await auth.grants(SpiffeId.user(DOMAIN, "bob"))
            assert str(impostor) in refused_auth.value.message, refused_auth.value.message
        finally:
            await registry.close()
            await auth.close()
    assert capture.calls == []


async def test_call_flow_dials_only_its_own_node(
    pki: Pki, fake_server: tuple[Capture, Callable[..., Any]]
) -> None:
    """ctx.call_flow (the executor's sync client) launches a child only on the node that
    hosts it: another node of the domain at that address gets nothing."""
    capture, start = fake_server
    address = await start(SpiffeId.node(DOMAIN, "node-x"))
    flow_tls = pki.material(SpiffeId.flow(DOMAIN, "node-a", "planner"))
    caller = GrpcFlowCaller(CallerSettings(address, "node-a"))
    caller.use("planner", (flow_tls.ca_cert, flow_tls.cert, flow_tls.key))

    def launch() -> None:
        caller.launch("hello", {"secret": "x"}, parent_execution_id="p1", parent_flow="planner")

    try:
        with pytest.raises(grpc.RpcError) as refused:
            await asyncio.to_thread(launch)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    finally:
        caller.close()
    assert capture.calls == []
