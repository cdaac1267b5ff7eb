"""The auth provider's state interface. Two implementations: `memory_store.MemoryAuthStore`
(tests, throwaway registries) and `sqlite_store.SqliteAuthStore` (tables `auth_*` in the
registry's database). One contract test suite (`tests/auth/test_store_contract.py`) runs
against both."""

from __future__ import annotations

from typing import Protocol

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


class AuthStore(Protocol):
    async def get_user(self, name: str) -> User | None: ...

    async def list_users(self) -> list[User]:
        """All users, ordered by name."""
        ...

    async def put_user(self, user: User) -> None:
        """Create or replace a user with its memberships; groups it names are created."""
        ...

    async def delete_user(self, name: str) -> bool:
        """Remove a user and its memberships; False when there was none."""
        ...

    async def list_groups(self) -> list[Group]:
        """All groups with their members, ordered by name."""
        ...

    async def put_group(self, group: Group) -> None:
        """Create a group or change its description (members are kept)."""
        ...

    async def delete_group(self, name: str) -> bool:
        """Remove a group and every membership in it; False when there was none."""
        ...

    async def add_token(self, token: TokenRecord) -> None: ...

    async def use_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        """Mark an unused, unexpired token used and return it, in one step; else None."""
        ...

    async def peek_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        """The token if it is unused and unexpired, without using it up; else None."""
        ...

    async def approved_names(self, identity: str) -> HostNames:
        """The host names approved for a server identity (empty when none were)."""
        ...

    async def approve_names(self, identity: str, names: HostNames, at: float, by: str) -> None:
        """Replace the host names approved for `identity`."""
        ...

    async def add_certificate(self, cert: CertificateRecord) -> None: ...

    async def get_certificate(self, serial: int) -> CertificateRecord | None: ...

    async def list_certificates(
        self, identity: str | None = None, valid_at: float | None = None
    ) -> list[CertificateRecord]:
        """Issued certificates (of `identity`; still valid at `valid_at`), oldest first."""
        ...

    async def revoke_serial(self, revocation: SerialRevocation) -> None:
        """Record a revoked certificate (a second revocation of a serial changes nothing)."""
        ...

    async def revoke_identity(self, revocation: IdentityRevocation) -> None:
        """Record (or move forward) the revocation time of an identity."""
        ...

    async def revocations(self, now: float) -> Revocations:
        """Identity revocations, and serial revocations of certificates not yet expired."""
        ...

    async def add_badge(self, badge: BadgeRecord) -> None: ...

    async def list_badges(
        self, subject_prefix: str = "", valid_at: float | None = None, revoked: bool = True
    ) -> list[BadgeRecord]:
        """Badges whose subject starts with `subject_prefix` (unexpired at `valid_at`), oldest
        first; `revoked` False leaves out revoked ones."""
        ...

    async def revoke_badge(self, badge_id: str, at: float, reason: str) -> None:
        """Mark a badge revoked (a revoked one keeps its first revocation; unknown: no-op)."""
        ...

    async def close(self) -> None: ...
