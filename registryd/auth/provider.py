"""The auth provider's domain: enrollment, renewal, flow identities, users, groups, grants,
revocations and the auth state nodes follow.

Plain objects in and out, an `AuthStore`, an `Issuer` and a `Clock` injected; nothing here
knows gRPC. The authorization table (`registryd/auth/policy.py`) decides who may call what;
this module decides *which identity* a certificate names: enrollment takes it from the token,
renewal from the caller's own certificate, flow certificates from the calling node.

The provider is also the registry's own `GrantResolver` and keeps the `RevocationList` its
guard checks, so a revocation or a role change holds on the registry at once; nodes learn
of it through `watch()` (the `WatchAuthState` stream). The certificate methods (tokens,
enrollment, renewal, host names) are in `certificates.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace

from kodosumi.authz import ADMIN, USER, Grants, Principal, default_roles
from kodosumi.errors import AlreadyExists, InvalidArgument
from kodosumi.revocations import RevocationList
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId, SpiffeId
from registryd.auth.certificates import CertificateDesk
from registryd.auth.errors import (
    CertificateNotFound,
    GroupNotFound,
    UserNotFound,
)
from registryd.auth.host_names import HostNamePolicy
from registryd.auth.issuer import Issuer
from registryd.auth.model import (
    USER_ROLES,
    CertificateRecord,
    Group,
    IdentityRevocation,
    Revocations,
    SerialRevocation,
    User,
)
from registryd.auth.store import AuthStore
from registryd.clock import Clock

log = logging.getLogger(__name__)

_GROUP_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    certificate_lifetime: float = 86_400.0
    token_lifetime: float = 86_400.0
    grants_cache_seconds: float = 5.0
    # User names (or SPIFFE ids) that hold the admin role whatever the database says.
    admins: tuple[str, ...] = ()
    # What enrollment tokens name: where to enroll, where the registry is.
    enroll_address: str = ""
    registry_address: str = ""
    # The registry's own id: tokens name it, so enrollees accept exactly this registry.
    registry_id: str = ""
    # Every address the registry advertises (tokens carry them; `registry_address` first).
    registry_addresses: tuple[str, ...] = ()
    # Names the CA signs for any server beyond token and approvals (host_names.py).
    host_names: HostNamePolicy = field(default_factory=HostNamePolicy)


@dataclass(frozen=True, slots=True)
class AuthState:
    """What nodes follow: the revocation list, and a generation that grows with any change of
    revocations, users or groups (so cached grants are dropped)."""

    generation: int
    revocations: Revocations


def parse_serial(text: str) -> int:
    try:
        return int(text.strip().lower().removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise InvalidArgument.field("serial", "a hexadecimal certificate serial") from None


def _check_group(name: str) -> str:
    if not _GROUP_NAME.match(name):
        raise InvalidArgument.field("groups", f"invalid group name {name!r}")
    return name


class AuthProvider(CertificateDesk):
    def __init__(
        self, store: AuthStore, issuer: Issuer, clock: Clock, settings: AuthSettings
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.clock = clock
        self.settings = settings
        self.trust_domain = issuer.ca.trust_domain
        self.revocations = RevocationList()
        self._users: dict[str, User] = {}
        self._revoked: Revocations = Revocations()
        self._generation = 0
        self._changed = asyncio.Event()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._users = {u.name: u for u in await self.store.list_users()}
        await self._reload_revocations()
        self._generation = 1

    def close(self) -> None:
        """End every `watch()` (their streams end; nodes reconnect)."""
        self._closed = True
        self._changed.set()

    async def _reload_revocations(self) -> None:
        self._revoked = await self.store.revocations(self.clock.now())
        self.revocations.replace(
            (r.serial for r in self._revoked.serials),
            {
                r.identity: dt.datetime.fromtimestamp(r.revoked_at, dt.UTC)
                for r in self._revoked.identities
            },
        )

    def _bump(self) -> None:
        self._generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # -- grants: the registry's GrantResolver, and GetGrants for nodes -------------------------

    async def roles_of(self, identity: SpiffeId) -> frozenset[str]:
        return (await self.grants_of(identity)).roles

    async def grants_of(self, identity: SpiffeId) -> Grants:
        if identity.kind is not IdentityKind.USER:
            return Grants(default_roles(identity))
        user = self._users.get(identity.name)
        roles = set(user.roles if user else ()) | {USER}
        if identity.name in self.settings.admins or str(identity) in self.settings.admins:
            roles.add(ADMIN)
        return Grants(frozenset(roles), user.groups if user else frozenset())

    def identity(self, text: str, field: str = "identity") -> SpiffeId:
        try:
            identity = SpiffeId.parse(text)
        except InvalidSpiffeId as e:
            raise InvalidArgument.field(field, str(e)) from None
        if identity.trust_domain != self.trust_domain:
            raise InvalidArgument.field(field, f"not of trust domain {self.trust_domain}")
        return identity

    # -- auth state -----------------------------------------------------------------------------

    def state(self) -> AuthState:
        return AuthState(self._generation, self._revoked)

    async def watch(self) -> AsyncIterator[AuthState]:
        """The auth state now, then after every change, until the provider closes."""
        while not self._closed:
            changed = self._changed
            yield self.state()
            await changed.wait()

    async def list_certificates(
        self, identity: str = "", include_expired: bool = False
    ) -> list[tuple[CertificateRecord, bool]]:
        """Issued certificates with whether each is revoked."""
        now = self.clock.now()
        found = await self.store.list_certificates(
            identity or None, None if include_expired else now
        )
        revoked_serials = {r.serial for r in self._revoked.serials}
        revoked_ids = {r.identity: r.revoked_at for r in self._revoked.identities}
        return [
            (
                c,
                c.serial in revoked_serials
                or (c.identity in revoked_ids and c.not_before <= revoked_ids[c.identity]),
            )
            for c in found
        ]

    # -- revocation -----------------------------------------------------------------------------

    async def revoke_serial(self, serial_text: str, reason: str = "") -> int:
        serial = parse_serial(serial_text)
        cert = await self.store.get_certificate(serial)
        if cert is None:
            raise CertificateNotFound(format(serial, "x"))
        await self.store.revoke_serial(
            SerialRevocation(serial, cert.identity, cert.not_after, self.clock.now(), reason)
        )
        log.info("revoked certificate %x of %s: %s", serial, cert.identity, reason or "-")
        return await self._changed_revocations()

    async def revoke_identity(self, identity_text: str, reason: str = "") -> int:
        identity = self.identity(identity_text)
        await self.store.revoke_identity(
            IdentityRevocation(str(identity), self.clock.now(), reason)
        )
        log.info("revoked every certificate of %s so far: %s", identity, reason or "-")
        return await self._changed_revocations()

    async def _changed_revocations(self) -> int:
        await self._reload_revocations()
        self._bump()
        return self._generation

    async def list_revocations(self) -> Revocations:
        return self._revoked

    # -- users and groups -----------------------------------------------------------------------

    def _user_roles(self, roles: Iterable[str]) -> frozenset[str]:
        chosen = set(roles) | {USER}
        unknown = chosen - USER_ROLES
        if unknown:
            raise InvalidArgument.field("roles", f"unknown roles: {', '.join(sorted(unknown))}")
        return frozenset(chosen)

    def _user_identity(self, name: str) -> SpiffeId:
        try:
            return SpiffeId.user(self.trust_domain, name)
        except InvalidSpiffeId as e:
            raise InvalidArgument.field("name", str(e)) from None

    async def create_user(
        self,
        creator: Principal,
        name: str,
        roles: Iterable[str] = (),
        groups: Iterable[str] = (),
        token_ttl: float | None = None,
    ) -> tuple[User, str]:
        """A new user and its first enrollment token."""
        identity = self._user_identity(name)
        if name in self._users:
            raise AlreadyExists(f"user {name!r} exists", reason="USER_EXISTS")
        self._check_enrollment()
        user = User(
            name,
            self._user_roles(roles),
            frozenset(_check_group(g) for g in groups),
            self.clock.now(),
        )
        await self.store.put_user(user)
        self._users[name] = user
        self._bump()
        token, _ = await self.create_token(creator, identity, token_ttl)
        log.info("user %s created (roles %s)", name, ", ".join(sorted(user.roles)))
        return user, token

    async def update_user(self, name: str, roles: Iterable[str], groups: Iterable[str]) -> User:
        user = self._users.get(name)
        if user is None:
            raise UserNotFound(name)
        changed = replace(
            user,
            roles=self._user_roles(roles),
            groups=frozenset(_check_group(g) for g in groups),
        )
        await self.store.put_user(changed)
        self._users[name] = changed
        self._bump()
        log.info("user %s now has roles %s", name, ", ".join(sorted(changed.roles)))
        return changed

    async def delete_user(self, name: str) -> None:
        """Remove the user and revoke every certificate it holds."""
        if name not in self._users:
            raise UserNotFound(name)
        identity = self._user_identity(name)
        await self.store.delete_user(name)
        del self._users[name]
        await self.store.revoke_identity(
            IdentityRevocation(str(identity), self.clock.now(), "user deleted")
        )
        await self._changed_revocations()

    async def list_users(self) -> list[User]:
        return [self._users[name] for name in sorted(self._users)]

    def user_identity(self, user: User) -> str:
        return str(self._user_identity(user.name))

    async def create_group(self, name: str, description: str = "") -> Group:
        await self.store.put_group(Group(_check_group(name), description))
        self._bump()
        return next(g for g in await self.store.list_groups() if g.name == name)

    async def delete_group(self, name: str) -> None:
        if not await self.store.delete_group(name):
            raise GroupNotFound(name)
        self._users = {u.name: u for u in await self.store.list_users()}
        self._bump()

    async def list_groups(self) -> list[Group]:
        return await self.store.list_groups()
