"""Plain types of the auth provider: users, groups, enrollment tokens, issued certificates,
revocations and badges. Times are Unix seconds; serials are integers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kodosumi.authz import ADMIN, OPERATOR, USER

# The roles a person may hold; `user` is implied.
USER_ROLES = frozenset({ADMIN, OPERATOR, USER})


@dataclass(frozen=True, slots=True)
class User:
    name: str
    roles: frozenset[str] = frozenset({USER})
    groups: frozenset[str] = frozenset()
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str = ""
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostNames:
    """DNS names and IP addresses a server identity's certificates may carry beyond loopback
    and the CA's policy: named in its enrollment token, or approved by an admin later."""

    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.ip_addresses)

    def to_json(self) -> str:
        return json.dumps({"dns": list(self.dns_names), "ips": list(self.ip_addresses)})

    @classmethod
    def from_json(cls, text: str | None) -> HostNames:
        data = json.loads(text) if text else {}
        return cls(tuple(data.get("dns", ())), tuple(data.get("ips", ())))


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A one-time enrollment token: only the SHA-256 of its secret is kept."""

    secret_hash: str
    identity: str
    created_at: float
    expires_at: float
    created_by: str = ""
    used_at: float | None = None
    # Host names the enrollee's certificate may carry (node tokens; see `HostNames`).
    names: HostNames = field(default_factory=HostNames)


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    serial: int
    identity: str
    not_before: float
    not_after: float
    issued_at: float


@dataclass(frozen=True, slots=True)
class SerialRevocation:
    serial: int
    identity: str
    # After this the certificate is expired anyway and leaves the revocation list.
    not_after: float
    revoked_at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IdentityRevocation:
    """Every certificate of `identity` valid from `revoked_at` or earlier is revoked."""

    identity: str
    revoked_at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Revocations:
    serials: tuple[SerialRevocation, ...] = ()
    identities: tuple[IdentityRevocation, ...] = ()


@dataclass(frozen=True, slots=True)
class BadgeRecord:
    badge_id: str
    kind: str
    subject: str
    token: str
    issued_at: float
    expires_at: float
    facts: dict[str, object] = field(default_factory=dict)
    # Service-level badges from measured service: their level, and their revocation (0: none).
    level: str = ""
    revoked_at: float = 0.0
    revoke_reason: str = ""
