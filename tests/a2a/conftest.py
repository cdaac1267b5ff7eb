"""A node for the A2A tests (embedded Ray, mTLS) and a2a-sdk clients of it, as the
node's local admin and as two plain users (alice, bob) of its trust domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumid.app import NodeApp
from kodosumid.config import A2AConfig, FlowEntry
from tests.node.conftest import TEST_FLOWS, RunningNode, node_config, ray_cluster  # noqa: F401

A2A_FLOWS = (
    *TEST_FLOWS,
    FlowEntry(
        "big-artifact",
        "tests.a2a.flows:big_artifact",
        input_schema={
            "type": "object",
            "properties": {"size": {"type": "integer", "minimum": 0}},
            "required": ["size"],
        },
    ),
    FlowEntry("asks-kinds", "tests.a2a.flows:asks_kinds"),
    FlowEntry(
        "big-then-asks",
        "tests.a2a.flows:big_then_asks",
        input_schema={"type": "object", "properties": {"size": {"type": "integer"}}},
    ),
    FlowEntry("private", "tests.flowlib:hello", groups=("insiders",)),
)


@pytest.fixture(scope="module")
async def a2a_node(
    ray_cluster: None,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningNode]:
    app = NodeApp(
        node_config(
            tmp_path_factory.mktemp("a2a-node"),
            flows=A2A_FLOWS,
            a2a=A2AConfig(http_listen="127.0.0.1:0", cancel_wait_seconds=10.0),
        )
    )
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


def user_material(node: RunningNode, name: str) -> TlsMaterial:
    """Credentials of a plain user `name` of the node's development CA."""
    pki = node.app.config.state_dir / "pki"
    ca = CertificateAuthority.load(pki / "ca.pem", pki / "ca.key")
    cert, key = ca.issue(SpiffeId.user(ca.trust_domain, name))
    return TlsMaterial(Path(pki / "ca.pem").read_bytes(), cert_pem(cert), key_pem(key))


def bootstrap_card(address: str, tenant: str = "") -> a2a.AgentCard:
    """The least card a client needs: the gRPC interface (the real card comes from it)."""
    return a2a.AgentCard(
        name="bootstrap",
        supported_interfaces=[
            a2a.AgentInterface(
                url=address, protocol_binding="GRPC", protocol_version="1.0", tenant=tenant
            )
        ],
        capabilities=a2a.AgentCapabilities(streaming=True, extended_agent_card=True),
    )


ClientMaker = Callable[..., Client]


@pytest.fixture
async def a2a_client(a2a_node: RunningNode) -> AsyncIterator[ClientMaker]:
    """`a2a_client(tenant="", user=None, card=None, streaming=True)`: an a2a-sdk client over
    gRPC (ClientFactory, GRPC transport) with the admin's or a user's credentials."""
    clients: list[Client] = []

    def make(
        tenant: str = "",
        user: str | None = None,
        card: a2a.AgentCard | None = None,
        streaming: bool = True,
    ) -> Client:
        assert a2a_node.app.client_files is not None
        material = (
            a2a_node.app.client_files.read() if user is None else user_material(a2a_node, user)
        )
        config = ClientConfig(
            streaming=streaming,
            grpc_channel_factory=lambda url: open_channel(
                url, material, expect=ServerExpectation.node()
            ),
            supported_protocol_bindings=["GRPC"],
        )
        client = ClientFactory(config).create(card or bootstrap_card(a2a_node.app.address, tenant))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
