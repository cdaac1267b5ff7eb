"""The gRPC face of the auth provider: decode, call the domain, encode. Nothing else.

The guard interceptor authenticates the caller and checks `registryd/auth/policy.py` before
these methods run; catalog errors become their status there too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from kodosumi.errors import InvalidArgument
from kodosumi.rpc.guard import current_principal
from kodosumi.spiffe import SpiffeId
from kodosumi.stream_slots import StreamSlots
from kodosumi.v1 import auth_pb2 as pb
from kodosumi.v1 import auth_pb2_grpc
from registryd.auth import codec
from registryd.auth.badges import BadgeDesk
from registryd.auth.errors import EnrollmentTokenInvalid
from registryd.auth.model import HostNames
from registryd.auth.provider import AuthProvider, AuthState
from registryd.auth.throttle import EnrollmentThrottle, peer_host
from registryd.codec import timestamp

Context = grpc.aio.ServicerContext[Any, Any]


class EnrollmentServicer(auth_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, provider: AuthProvider, throttle: EnrollmentThrottle | None = None) -> None:
        self.provider = provider
        self.throttle = throttle or EnrollmentThrottle(provider.clock.now)

    async def Enroll(self, request: pb.EnrollRequest, context: Context) -> pb.EnrollResponse:
        address = peer_host(context.peer())
        self.throttle.check(address)
        try:
            issued = await self.provider.enroll(request.token, request.csr)
        except EnrollmentTokenInvalid:
            self.throttle.failed(address)
            raise
        self.throttle.succeeded(address)
        return pb.EnrollResponse(
            identity=str(issued.identity),
            certificate=issued.cert_pem,
            ca_certificate=issued.ca_pem,
            registry_address=self.provider.settings.registry_address,
        )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self, provider: AuthProvider, badges: BadgeDesk | None, streams: StreamSlots | None = None
    ) -> None:
        self.provider = provider
        self._state_cache: tuple[int, object, bytes] | None = None
        self.badges = badges
        # Open streams per identity, shared with WatchRegistry (registryd/daemon.py).
        self.streams = streams or StreamSlots(0)

    # -- every enrolled party -----------------------------------------------------------------

    async def RenewCertificate(
        self, request: pb.RenewCertificateRequest, context: Context
    ) -> pb.RenewCertificateResponse:
        issued = await self.provider.renew(current_principal(), request.csr)
        return pb.RenewCertificateResponse(
            certificate=issued.cert_pem, ca_certificate=issued.ca_pem
        )

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Context) -> pb.WhoAmIResponse:
        principal = current_principal()
        response = pb.WhoAmIResponse(
            identity=principal.id, roles=sorted(principal.roles), groups=sorted(principal.groups)
        )
        cert = _peer_certificate(context)
        if cert is not None:
            response.serial = format(cert.serial_number, "x")
            response.expire_time.CopyFrom(timestamp(cert.not_valid_after_utc.timestamp()))
        return response

    async def ListBadges(
        self, request: pb.ListBadgesRequest, context: Context
    ) -> pb.ListBadgesResponse:
        found = (
            await self.badges.list(
                request.node_id, request.flow, request.include_revoked, request.badge_id
            )
            if self.badges
            else []
        )
        return pb.ListBadgesResponse(badges=[codec.badge_to_pb(b) for b in found])

    # -- nodes ----------------------------------------------------------------------------------

    async def IssueFlowCertificate(
        self, request: pb.IssueFlowCertificateRequest, context: Context
    ) -> pb.IssueFlowCertificateResponse:
        issued = await self.provider.issue_flow(current_principal(), request.flow, request.csr)
        return pb.IssueFlowCertificateResponse(
            identity=str(issued.identity),
            certificate=issued.cert_pem,
            ca_certificate=issued.ca_pem,
        )

    async def GetGrants(
        self, request: pb.GetGrantsRequest, context: Context
    ) -> pb.GetGrantsResponse:
        grants = await self.provider.grants_of(self.provider.identity(request.identity))
        return pb.GetGrantsResponse(
            roles=sorted(grants.roles),
            groups=sorted(grants.groups),
            cache_ttl=codec.duration(self.provider.settings.grants_cache_seconds),
        )

    async def WatchAuthState(
        self, request: pb.WatchAuthStateRequest, context: Context
    ) -> AsyncIterator[pb.WatchAuthStateResponse]:
        with self.streams.open(current_principal().id):
            async for state in self.provider.watch():
                yield self._state_bytes(state)  # type: ignore[misc]  # shared bytes, passed on

    def _state_bytes(self, state: AuthState) -> bytes:
        """The state as response bytes, built once per change for every follower (a node
        that does not read holds a reference to these bytes, not a message of its own)."""
        cached = self._state_cache
        if cached is None or cached[0] != state.generation or cached[1] is not state.revocations:
            encoded = codec.state_to_pb(state).SerializeToString()
            cached = self._state_cache = (state.generation, state.revocations, encoded)
        return cached[2]

    # -- admins ---------------------------------------------------------------------------------

    async def CreateUser(
        self, request: pb.CreateUserRequest, context: Context
    ) -> pb.CreateUserResponse:
        user, token = await self.provider.create_user(
            current_principal(),
            request.name,
            codec.roles_from_pb(list(request.roles)),
            list(request.groups),
            codec.seconds(request.token_ttl),
        )
        return pb.CreateUserResponse(
            user=codec.user_to_pb(user, self.provider.user_identity(user)),
            enrollment_token=token,
        )

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
        user = await self.provider.update_user(
            request.name, codec.roles_from_pb(list(request.roles)), list(request.groups)
        )
        return pb.UpdateUserResponse(user=codec.user_to_pb(user, self.provider.user_identity(user)))

    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Context
    ) -> pb.DeleteUserResponse:
        await self.provider.delete_user(request.name)
        return pb.DeleteUserResponse()

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        users = await self.provider.list_users()
        return pb.ListUsersResponse(
            users=[codec.user_to_pb(u, self.provider.user_identity(u)) for u in users]
        )

    async def CreateGroup(
        self, request: pb.CreateGroupRequest, context: Context
    ) -> pb.CreateGroupResponse:
        group = await self.provider.create_group(request.name, request.description)
        return pb.CreateGroupResponse(group=codec.group_to_pb(group))

    async def DeleteGroup(
        self, request: pb.DeleteGroupRequest, context: Context
    ) -> pb.DeleteGroupResponse:
        await self.provider.delete_group(request.name)
        return pb.DeleteGroupResponse()

    async def ListGroups(
        self, request: pb.ListGroupsRequest, context: Context
    ) -> pb.ListGroupsResponse:
        groups = await self.provider.list_groups()
        return pb.ListGroupsResponse(groups=[codec.group_to_pb(g) for g in groups])

    async def CreateEnrollmentToken(
        self, request: pb.CreateEnrollmentTokenRequest, context: Context
    ) -> pb.CreateEnrollmentTokenResponse:
        identity = _token_identity(self.provider.trust_domain, request.kind, request.name)
        names = HostNames(tuple(request.dns_names), tuple(request.ip_addresses))
        token, expires = await self.provider.create_token(
            current_principal(), identity, codec.seconds(request.ttl), names
        )
        return pb.CreateEnrollmentTokenResponse(
            identity=str(identity), enrollment_token=token, expire_time=timestamp(expires)
        )

    async def ApproveHostNames(
        self, request: pb.ApproveHostNamesRequest, context: Context
    ) -> pb.ApproveHostNamesResponse:
        names = HostNames(tuple(request.dns_names), tuple(request.ip_addresses))
        identity = await self.provider.approve_names(current_principal(), request.node_id, names)
        approved = await self.provider.store.approved_names(str(identity))
        return pb.ApproveHostNamesResponse(
            identity=str(identity),
            dns_names=approved.dns_names,
            ip_addresses=approved.ip_addresses,
        )

    async def ListCertificates(
        self, request: pb.ListCertificatesRequest, context: Context
    ) -> pb.ListCertificatesResponse:
        found = await self.provider.list_certificates(request.identity, request.include_expired)
        return pb.ListCertificatesResponse(
            certificates=[codec.certificate_to_pb(c, revoked) for c, revoked in found]
        )

    async def Revoke(self, request: pb.RevokeRequest, context: Context) -> pb.RevokeResponse:
        target = request.WhichOneof("target")
        if target == "serial":
            generation = await self.provider.revoke_serial(request.serial, request.reason)
        elif target == "identity":
            generation = await self.provider.revoke_identity(request.identity, request.reason)
        else:
            raise InvalidArgument.field("target", "a serial or an identity")
        return pb.RevokeResponse(generation=generation)

    async def ListRevocations(
        self, request: pb.ListRevocationsRequest, context: Context
    ) -> pb.ListRevocationsResponse:
        revoked = await self.provider.list_revocations()
        return pb.ListRevocationsResponse(revocations=codec.revocations_to_pb(revoked))

    async def IssueBadge(
        self, request: pb.IssueBadgeRequest, context: Context
    ) -> pb.IssueBadgeResponse:
        if self.badges is None:
            raise InvalidArgument("this auth provider issues no badges")
        kind = codec.BADGE_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument.field("kind", "certified-flow or service-level")
        badge = await self.badges.issue(
            kind,
            request.node_id,
            request.flow,
            codec.seconds(request.ttl),
            codec.seconds(request.window),
        )
        return pb.IssueBadgeResponse(badge=codec.badge_to_pb(badge))


def _token_identity(domain: str, kind: int, name: str) -> SpiffeId:
    from kodosumi.spiffe import InvalidSpiffeId

    try:
        if kind == pb.IDENTITY_KIND_USER:
            return SpiffeId.user(domain, name)
        if kind == pb.IDENTITY_KIND_NODE:
            return SpiffeId.node(domain, name)
        if kind == pb.IDENTITY_KIND_GATEWAY:
            return SpiffeId.gateway(domain, name)
    except InvalidSpiffeId as e:
        raise InvalidArgument.field("name", str(e)) from None
    raise InvalidArgument.field(
        "kind", "IDENTITY_KIND_USER, IDENTITY_KIND_NODE or IDENTITY_KIND_GATEWAY"
    )


def _peer_certificate(context: Context) -> Any:
    from cryptography import x509

    pems: Any = context.auth_context().get("x509_pem_cert")
    return x509.load_pem_x509_certificate(pems[0]) if pems else None
