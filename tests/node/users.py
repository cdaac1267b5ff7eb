"""Ordinary users of a test node: certificates from the node's development CA (not admins)."""

from __future__ import annotations

import grpc

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial, pki_dir
from kodosumi.v1 import flow_pb2_grpc, node_pb2_grpc
from tests.node.conftest import RunningNode


class User:
    def __init__(self, node: RunningNode, name: str) -> None:
        d = pki_dir(node.app.config.state_dir)
        ca = CertificateAuthority.load(d / "ca.pem", d / "ca.key")
        self.identity = SpiffeId.user(ca.trust_domain, name)
        cert, key = ca.issue(self.identity)
        self.tls = TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))
        self.address = node.app.address
        self.channel = self.open()
        self.flows = flow_pb2_grpc.FlowServiceStub(self.channel)
        self.node = node_pb2_grpc.NodeServiceStub(self.channel)

    def open(self) -> grpc.aio.Channel:
        """Another channel with the same identity (a user may open many)."""
        return open_channel(self.address, self.tls, expect=ServerExpectation.node())

    async def close(self) -> None:
        await self.channel.close()
