"""The node's gRPC client of the auth provider (`AuthService` beside the registry): grants of
callers, the auth state stream, renewal of its own certificate and certificates for the flows
it hosts. One mTLS channel with the node's identity; with rotating credentials it follows
renewals by itself. Failed calls surface as catalog errors (`remote_errors`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from kodosumi.authz import Grants
from kodosumi.credentials import IssuedCertificate
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2 as pb
from kodosumi.v1 import auth_pb2_grpc
from kodosumid.network.remote_errors import catalog_error

_PEER = "the auth provider"


class AuthClient:
    def __init__(
        self, address: str, tls: TlsMaterial, call_timeout: float = 5.0, registry_id: str = ""
    ) -> None:
        self.address = address
        self.call_timeout = call_timeout
        # The auth provider lives in registryd: its server holds a registry identity.
        self._channel = open_channel(address, tls, expect=ServerExpectation.registry(registry_id))
        self._stub: auth_pb2_grpc.AuthServiceAsyncStub = auth_pb2_grpc.AuthServiceStub(  # type: ignore[assignment]
            self._channel
        )

    async def close(self) -> None:
        await self._channel.close()

    async def grants(self, identity: SpiffeId) -> Grants:
        try:
            response = await self._stub.GetGrants(
                pb.GetGrantsRequest(identity=str(identity)), timeout=self.call_timeout
            )
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=_PEER) from None
        return Grants(frozenset(response.roles), frozenset(response.groups))

    async def watch(self) -> AsyncIterator[pb.WatchAuthStateResponse]:
        """The auth state now and after every change; ends (raises) when the stream breaks."""
        call = self._stub.WatchAuthState(pb.WatchAuthStateRequest())
        try:
            async for state in call:
                yield state
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=_PEER) from None
        finally:
            call.cancel()

    async def renew(self, csr: bytes) -> IssuedCertificate:
        try:
            response = await self._stub.RenewCertificate(
                pb.RenewCertificateRequest(csr=csr), timeout=self.call_timeout
            )
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=_PEER) from None
        return IssuedCertificate(response.certificate, response.ca_certificate)

    async def issue_flow(self, flow: str, csr: bytes) -> IssuedCertificate:
        try:
            response = await self._stub.IssueFlowCertificate(
                pb.IssueFlowCertificateRequest(flow=flow, csr=csr), timeout=self.call_timeout
            )
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=_PEER) from None
        return IssuedCertificate(response.certificate, response.ca_certificate)
