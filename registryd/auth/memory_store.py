"""An `AuthStore` in memory (tests and throwaway registries)."""

from __future__ import annotations

from dataclasses import replace

from registryd.auth.model import (
    BadgeRecord,
    CertificateRecord,
    Group,
    HostNames,
    IdentityRevocation,
    Revocations,
    SerialRevocation,
    TokenRecord,
    User,
)


class MemoryAuthStore:
    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._groups: dict[str, str] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._names: dict[str, HostNames] = {}
        self._certs: dict[int, CertificateRecord] = {}
        self._serials: dict[int, SerialRevocation] = {}
        self._identities: dict[str, IdentityRevocation] = {}
        self._badges: list[BadgeRecord] = []

    async def get_user(self, name: str) -> User | None:
        return self._users.get(name)

    async def list_users(self) -> list[User]:
        return [self._users[name] for name in sorted(self._users)]

    async def put_user(self, user: User) -> None:
        for group in user.groups:
            self._groups.setdefault(group, "")
        self._users[user.name] = user

    async def delete_user(self, name: str) -> bool:
        return self._users.pop(name, None) is not None

    async def list_groups(self) -> list[Group]:
        return [
            Group(
                name,
                self._groups[name],
                tuple(sorted(u.name for u in self._users.values() if name in u.groups)),
            )
            for name in sorted(self._groups)
        ]

    async def put_group(self, group: Group) -> None:
        self._groups[group.name] = group.description

    async def delete_group(self, name: str) -> bool:
        if name not in self._groups:
            return False
        del self._groups[name]
        for user in list(self._users.values()):
            if name in user.groups:
                self._users[user.name] = replace(user, groups=user.groups - {name})
        return True

    async def add_token(self, token: TokenRecord) -> None:
        self._tokens[token.secret_hash] = token

    async def use_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        token = self._tokens.get(secret_hash)
        if token is None or token.used_at is not None or token.expires_at <= now:
            return None
        used = replace(token, used_at=now)
        self._tokens[secret_hash] = used
        return used

    async def peek_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        token = self._tokens.get(secret_hash)
        if token is None or token.used_at is not None or token.expires_at <= now:
            return None
        return token

    async def approved_names(self, identity: str) -> HostNames:
        return self._names.get(identity, HostNames())

    async def approve_names(self, identity: str, names: HostNames, at: float, by: str) -> None:
        self._names[identity] = names

    async def add_certificate(self, cert: CertificateRecord) -> None:
        self._certs[cert.serial] = cert

    async def get_certificate(self, serial: int) -> CertificateRecord | None:
        return self._certs.get(serial)

    async def list_certificates(
        self, identity: str | None = None, valid_at: float | None = None
    ) -> list[CertificateRecord]:
        found = [
            c
            for c in self._certs.values()
            if (identity is None or c.identity == identity)
            and (valid_at is None or c.not_after > valid_at)
        ]
        return sorted(found, key=lambda c: (c.issued_at, c.serial))

    async def revoke_serial(self, revocation: SerialRevocation) -> None:
        self._serials.setdefault(revocation.serial, revocation)

    async def revoke_identity(self, revocation: IdentityRevocation) -> None:
        known = self._identities.get(revocation.identity)
        if known is None or known.revoked_at < revocation.revoked_at:
            self._identities[revocation.identity] = revocation

    async def revocations(self, now: float) -> Revocations:
        serials = sorted(
            (r for r in self._serials.values() if r.not_after > now), key=lambda r: r.serial
        )
        identities = sorted(self._identities.values(), key=lambda r: r.identity)
        return Revocations(tuple(serials), tuple(identities))

    async def add_badge(self, badge: BadgeRecord) -> None:
        self._badges.append(badge)

    async def list_badges(
        self, subject_prefix: str = "", valid_at: float | None = None, revoked: bool = True
    ) -> list[BadgeRecord]:
        found = [
            b
            for b in self._badges
            if b.subject.startswith(subject_prefix)
            and (valid_at is None or b.expires_at > valid_at)
            and (revoked or not b.revoked_at)
        ]
        return sorted(found, key=lambda b: (b.issued_at, b.badge_id))

    async def revoke_badge(self, badge_id: str, at: float, reason: str) -> None:
        for i, badge in enumerate(self._badges):
            if badge.badge_id == badge_id and not badge.revoked_at:
                self._badges[i] = replace(badge, revoked_at=at, revoke_reason=reason)

    async def close(self) -> None:
        return None
