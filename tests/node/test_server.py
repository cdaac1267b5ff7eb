"""The node as a gRPC server: health, reflection, mTLS, the authorization table."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from a2a.types import a2a_pb2
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from kodosumi.authz import STANDARD_METHODS
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import file_pb2, flow_pb2, node_pb2, quote_pb2, usage_pb2
from kodosumid.auth.policy import NODE_POLICY
from tests.node.conftest import RunningNode
from tests.node.helpers import eventually


def test_policy_covers_exactly_the_served_methods() -> None:
    served = {
        f"/{service.full_name}/{method.name}"
        for module in (flow_pb2, node_pb2, a2a_pb2, file_pb2, usage_pb2, quote_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert set(NODE_POLICY) == served | set(STANDARD_METHODS)


async def test_health_is_serving_over_mtls(shared_node: RunningNode) -> None:
    health = health_pb2_grpc.HealthStub(shared_node.channel)
    for service in ("", "kodosumi.v1.FlowService", "kodosumi.v1.NodeService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(shared_node: RunningNode) -> None:
    assert shared_node.app.client_files is not None
    material = shared_node.app.client_files.read()

    def browse() -> tuple[set[str], str]:
        # The standard (blocking) reflection client, as grpcurl-like tools use it; it runs in
        # a thread so the node's event loop keeps serving.
        credentials = grpc.ssl_channel_credentials(material.ca_cert, material.key, material.cert)
        with grpc.secure_channel(shared_node.app.address, credentials) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            names = set(database.get_services())
            pool = descriptor_pool.DescriptorPool(database)
            service = pool.FindServiceByName("kodosumi.v1.FlowService")
            return names, service.methods_by_name["LaunchExecution"].input_type.full_name

    services, launch_input = await asyncio.to_thread(browse)
    assert {
        "kodosumi.v1.FlowService",
        "kodosumi.v1.NodeService",
        "grpc.health.v1.Health",
    } <= services
    assert launch_input == "kodosumi.v1.LaunchExecutionRequest"


async def test_node_info(shared_node: RunningNode) -> None:
    async def executors_up() -> bool:
        reply = await shared_node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
        return reply.node.load.executor_actors >= 1

    await eventually(executors_up)
    info = (await shared_node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
    assert info.node_id == "test-node"
    assert info.identity == "spiffe://local.kodosumi/node/test-node"
    assert {f.name for f in info.flows} >= {"hello", "emit-many"}
    assert info.load.executor_actors >= 1
    assert info.ray_address == "embedded"


async def test_a_client_of_another_ca_is_rejected_at_the_handshake(
    shared_node: RunningNode,
) -> None:
    assert shared_node.app.client_files is not None
    ours = shared_node.app.client_files.read()
    foreign_ca = CertificateAuthority.create(
        "local.kodosumi",
        shared_node.app.config.state_dir / "foreign-ca.pem",
        shared_node.app.config.state_dir / "foreign-ca.key",
    )
    cert, key = foreign_ca.issue(SpiffeId.user("local.kodosumi", "mallory"))
    channel = open_channel(
        shared_node.app.address,
        TlsMaterial(ours.ca_cert, cert_pem(cert), key_pem(key)),
        expect=ServerExpectation.node(),
    )
    try:
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
