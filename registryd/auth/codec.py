"""Between the wire (`kodosumi.v1.auth_pb2`) and the auth provider's types."""

from __future__ import annotations

from kodosumi.authz import ADMIN, OPERATOR, USER
from kodosumi.errors import InvalidArgument
from kodosumi.v1 import auth_pb2 as pb
from registryd.auth.model import BadgeRecord, CertificateRecord, Group, Revocations, User
from registryd.auth.provider import AuthState
from registryd.codec import duration, timestamp

_ROLE_TO_PB = {USER: pb.ROLE_USER, OPERATOR: pb.ROLE_OPERATOR, ADMIN: pb.ROLE_ADMIN}
_ROLE_FROM_PB: dict[int, str] = {int(v): k for k, v in _ROLE_TO_PB.items()}
BADGE_KINDS: dict[int, str] = {
    pb.BADGE_KIND_CERTIFIED_FLOW: "certified-flow",
    pb.BADGE_KIND_SERVICE_LEVEL: "service-level",
}
_BADGE_KIND_TO_PB = {v: k for k, v in BADGE_KINDS.items()}


def roles_from_pb(roles: list[int]) -> list[str]:
    unknown = [r for r in roles if r not in _ROLE_FROM_PB]
    if unknown:
        raise InvalidArgument.field("roles", f"unknown role values {unknown}")
    return [_ROLE_FROM_PB[r] for r in roles]


def seconds(value: object) -> float | None:
    """A Duration field as seconds; None when unset or zero."""
    total = value.seconds + value.nanos / 1e9  # type: ignore[attr-defined]
    return total if total > 0 else None


def user_to_pb(user: User, identity: str) -> pb.User:
    return pb.User(
        name=user.name,
        identity=identity,
        roles=sorted(_ROLE_TO_PB[r] for r in user.roles if r in _ROLE_TO_PB),
        groups=sorted(user.groups),
        create_time=timestamp(user.created_at),
    )


def group_to_pb(group: Group) -> pb.Group:
    return pb.Group(name=group.name, description=group.description, members=list(group.members))


def certificate_to_pb(cert: CertificateRecord, revoked: bool) -> pb.Certificate:
    return pb.Certificate(
        serial=format(cert.serial, "x"),
        identity=cert.identity,
        start_time=timestamp(cert.not_before),
        expire_time=timestamp(cert.not_after),
        revoked=revoked,
    )


def revocations_to_pb(revoked: Revocations) -> list[pb.Revocation]:
    out = [
        pb.Revocation(
            serial=format(r.serial, "x"),
            identity=r.identity,
            revoke_time=timestamp(r.revoked_at),
            reason=r.reason,
        )
        for r in revoked.serials
    ]
    out += [
        pb.Revocation(identity=r.identity, revoke_time=timestamp(r.revoked_at), reason=r.reason)
        for r in revoked.identities
    ]
    return out


def state_to_pb(state: AuthState) -> pb.WatchAuthStateResponse:
    return pb.WatchAuthStateResponse(
        generation=state.generation,
        revoked_serials=[format(r.serial, "x") for r in state.revocations.serials],
        revoked_identities=[
            pb.RevokedIdentity(identity=r.identity, revoke_time=timestamp(r.revoked_at))
            for r in state.revocations.identities
        ],
    )


def badge_to_pb(badge: BadgeRecord) -> pb.Badge:
    message = pb.Badge(
        token=badge.token,
        kind=pb.BadgeKind.ValueType(_BADGE_KIND_TO_PB.get(badge.kind, 0)),
        subject=badge.subject,
        issue_time=timestamp(badge.issued_at),
        expire_time=timestamp(badge.expires_at),
        badge_id=badge.badge_id,
        level=badge.level,
        revoke_reason=badge.revoke_reason,
    )
    if badge.revoked_at:
        message.revoke_time.CopyFrom(timestamp(badge.revoked_at))
    return message


__all__ = ["duration"]
