"""An `AuthStore` in the registry's SQLite database (tables `auth_*`, WAL).

It has a connection of its own beside the registry's; both write with `BEGIN IMMEDIATE` and a
busy timeout, so they take turns. Auth writes are rare (an enrollment, an admin command).
Serials are 159-bit numbers and are kept as hex text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from kodosumi import sqlite
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
from registryd.auth.sqlite_schema import BADGE_COLUMNS, SCHEMA

_BADGE_ROW = (
    "badge_id, kind, subject, token, issued_at, expires_at, facts, level, revoked_at, revoke_reason"
)


def _hex(serial: int) -> str:
    return format(serial, "x")


class SqliteAuthStore:
    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteAuthStore:
        conn = await sqlite.connect(path, foreign_keys=True)
        try:
            await conn.executescript(SCHEMA)
            columns = await conn.execute_fetchall("PRAGMA table_info(auth_tokens)")
            if "names" not in {c[1] for c in columns}:
                # Databases made before tokens named host names.
                await conn.execute(
                    "ALTER TABLE auth_tokens ADD COLUMN names TEXT NOT NULL DEFAULT ''"
                )
            columns = await conn.execute_fetchall("PRAGMA table_info(auth_badges)")
            have = {c[1] for c in columns}
            for name, kind in BADGE_COLUMNS:
                if name not in have:
                    await conn.execute(f"ALTER TABLE auth_badges ADD COLUMN {name} {kind}")
        except BaseException:
            await conn.close()
            raise
        return cls(path, conn)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    # -- users and groups -------------------------------------------------------------------

    async def get_user(self, name: str) -> User | None:
        users = await self._users("WHERE u.name = ?", (name,))
        return users[0] if users else None

    async def list_users(self) -> list[User]:
        return await self._users("", ())

    async def _users(self, where: str, params: tuple[Any, ...]) -> list[User]:
        rows = await self._rows(
            "SELECT u.name, u.roles, u.created_at, "
            "(SELECT json_group_array(group_name) FROM auth_members m WHERE m.user_name = u.name) "
            f"FROM auth_users u {where} ORDER BY u.name",
            params,
        )
        return [
            User(name, frozenset(json.loads(roles)), frozenset(json.loads(groups)), created)
            for name, roles, created, groups in rows
        ]

    async def put_user(self, user: User) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO auth_users (name, roles, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET roles = excluded.roles",
                (user.name, json.dumps(sorted(user.roles)), user.created_at),
            )
            await db.executemany(
                "INSERT OR IGNORE INTO auth_groups (name, description) VALUES (?, '')",
                [(g,) for g in sorted(user.groups)],
            )
            await db.execute("DELETE FROM auth_members WHERE user_name = ?", (user.name,))
            await db.executemany(
                "INSERT INTO auth_members (user_name, group_name) VALUES (?, ?)",
                [(user.name, g) for g in sorted(user.groups)],
            )

    async def delete_user(self, name: str) -> bool:
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM auth_users WHERE name = ?", (name,))
            return cursor.rowcount > 0

    async def list_groups(self) -> list[Group]:
        rows = await self._rows(
            "SELECT g.name, g.description, "
            "(SELECT json_group_array(user_name) FROM "
            " (SELECT user_name FROM auth_members m WHERE m.group_name = g.name "
            "  ORDER BY user_name)) "
            "FROM auth_groups g ORDER BY g.name"
        )
        return [Group(name, desc, tuple(json.loads(members))) for name, desc, members in rows]

    async def put_group(self, group: Group) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO auth_groups (name, description) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET description = excluded.description",
                (group.name, group.description),
            )

    async def delete_group(self, name: str) -> bool:
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM auth_groups WHERE name = ?", (name,))
            return cursor.rowcount > 0

    # -- tokens -----------------------------------------------------------------------------

    async def add_token(self, token: TokenRecord) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO auth_tokens (secret_hash, identity, created_at, expires_at, "
                "created_by, used_at, names) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token.secret_hash,
                    token.identity,
                    token.created_at,
                    token.expires_at,
                    token.created_by,
                    token.used_at,
                    token.names.to_json() if token.names else "",
                ),
            )

    async def use_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE auth_tokens SET used_at = ? "
                "WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?",
                (now, secret_hash, now),
            )
            if cursor.rowcount == 0:
                return None
            cursor = await db.execute(
                "SELECT identity, created_at, expires_at, created_by, names FROM auth_tokens "
                "WHERE secret_hash = ?",
                (secret_hash,),
            )
            row = await cursor.fetchone()
        assert row is not None
        return TokenRecord(
            secret_hash, row[0], row[1], row[2], row[3], now, HostNames.from_json(row[4])
        )

    async def peek_token(self, secret_hash: str, now: float) -> TokenRecord | None:
        rows = await self._rows(
            "SELECT identity, created_at, expires_at, created_by, names FROM auth_tokens "
            "WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?",
            (secret_hash, now),
        )
        if not rows:
            return None
        identity, created, expires, by, names = rows[0]
        return TokenRecord(
            secret_hash, identity, created, expires, by, None, HostNames.from_json(names)
        )

    async def approved_names(self, identity: str) -> HostNames:
        rows = await self._rows("SELECT names FROM auth_host_names WHERE identity = ?", (identity,))
        return HostNames.from_json(rows[0][0]) if rows else HostNames()

    async def approve_names(self, identity: str, names: HostNames, at: float, by: str) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO auth_host_names (identity, names, approved_at, "
                "approved_by) VALUES (?, ?, ?, ?)",
                (identity, names.to_json(), at, by),
            )

    # -- certificates and revocations -------------------------------------------------------

    async def add_certificate(self, cert: CertificateRecord) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO auth_certificates "
                "(serial, identity, not_before, not_after, issued_at) VALUES (?, ?, ?, ?, ?)",
                (_hex(cert.serial), cert.identity, cert.not_before, cert.not_after, cert.issued_at),
            )

    async def get_certificate(self, serial: int) -> CertificateRecord | None:
        rows = await self._rows(
            "SELECT serial, identity, not_before, not_after, issued_at FROM auth_certificates "
            "WHERE serial = ?",
            (_hex(serial),),
        )
        return _cert(rows[0]) if rows else None

    async def list_certificates(
        self, identity: str | None = None, valid_at: float | None = None
    ) -> list[CertificateRecord]:
        where: list[str] = []
        params: list[Any] = []
        if identity is not None:
            where.append("identity = ?")
            params.append(identity)
        if valid_at is not None:
            where.append("not_after > ?")
            params.append(valid_at)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._rows(
            "SELECT serial, identity, not_before, not_after, issued_at FROM auth_certificates "
            f"{clause} ORDER BY issued_at, serial",
            tuple(params),
        )
        found = [_cert(row) for row in rows]
        # Hex text does not sort as numbers: order ties by the serial's value.
        return sorted(found, key=lambda c: (c.issued_at, c.serial))

    async def revoke_serial(self, revocation: SerialRevocation) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT OR IGNORE INTO auth_revoked_serials "
                "(serial, identity, not_after, revoked_at, reason) VALUES (?, ?, ?, ?, ?)",
                (
                    _hex(revocation.serial),
                    revocation.identity,
                    revocation.not_after,
                    revocation.revoked_at,
                    revocation.reason,
                ),
            )

    async def revoke_identity(self, revocation: IdentityRevocation) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO auth_revoked_identities (identity, revoked_at, reason) "
                "VALUES (?, ?, ?) ON CONFLICT (identity) DO UPDATE SET "
                "revoked_at = MAX(revoked_at, excluded.revoked_at), reason = excluded.reason",
                (revocation.identity, revocation.revoked_at, revocation.reason),
            )

    async def revocations(self, now: float) -> Revocations:
        serials = await self._rows(
            "SELECT serial, identity, not_after, revoked_at, reason FROM auth_revoked_serials "
            "WHERE not_after > ?",
            (now,),
        )
        identities = await self._rows(
            "SELECT identity, revoked_at, reason FROM auth_revoked_identities ORDER BY identity"
        )
        return Revocations(
            tuple(
                sorted(
                    (SerialRevocation(int(s, 16), i, na, ra, r) for s, i, na, ra, r in serials),
                    key=lambda r: r.serial,
                )
            ),
            tuple(IdentityRevocation(i, ra, r) for i, ra, r in identities),
        )

    # -- badges -----------------------------------------------------------------------------

    async def add_badge(self, badge: BadgeRecord) -> None:
        async with self._write() as db:
            await db.execute(
                f"INSERT INTO auth_badges ({_BADGE_ROW}) VALUES ({', '.join('?' * 10)})",
                (
                    badge.badge_id,
                    badge.kind,
                    badge.subject,
                    badge.token,
                    badge.issued_at,
                    badge.expires_at,
                    json.dumps(badge.facts),
                    badge.level,
                    badge.revoked_at,
                    badge.revoke_reason,
                ),
            )

    async def list_badges(
        self, subject_prefix: str = "", valid_at: float | None = None, revoked: bool = True
    ) -> list[BadgeRecord]:
        rows = await self._rows(
            f"SELECT {_BADGE_ROW} FROM auth_badges WHERE substr(subject, 1, ?) = ? "
            "AND expires_at > ? AND (? OR revoked_at = 0) ORDER BY issued_at, badge_id",
            (
                len(subject_prefix),
                subject_prefix,
                -1.0 if valid_at is None else valid_at,
                int(revoked),
            ),
        )
        return [
            BadgeRecord(bid, kind, subject, token, issued, expires, json.loads(facts), *rest)
            for bid, kind, subject, token, issued, expires, facts, *rest in rows
        ]

    async def revoke_badge(self, badge_id: str, at: float, reason: str) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE auth_badges SET revoked_at = ?, revoke_reason = ? "
                "WHERE badge_id = ? AND revoked_at = 0",
                (at, reason, badge_id),
            )

    async def close(self) -> None:
        await self._conn.close()


def _cert(row: Any) -> CertificateRecord:
    serial, identity, not_before, not_after, issued_at = row
    return CertificateRecord(int(serial, 16), identity, not_before, not_after, issued_at)
