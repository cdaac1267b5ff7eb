"""The auth provider's tables in the registry's SQLite database (`auth_*`), for
`sqlite_store.py`: created if missing; columns added later are added to older databases."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_users (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_groups (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_members (
    user_name TEXT NOT NULL REFERENCES auth_users (name) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES auth_groups (name) ON DELETE CASCADE,
    PRIMARY KEY (user_name, group_name)
);
CREATE TABLE IF NOT EXISTS auth_tokens (
    secret_hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    used_at REAL,
    names TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS auth_host_names (
    identity TEXT PRIMARY KEY,
    names TEXT NOT NULL,
    approved_at REAL NOT NULL,
    approved_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_certificates (
    serial TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    issued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_certificates_by_identity ON auth_certificates (identity);
CREATE TABLE IF NOT EXISTS auth_revoked_serials (
    serial TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    not_after REAL NOT NULL,
    revoked_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_revoked_identities (
    identity TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_badges (
    badge_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    token TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    facts TEXT NOT NULL
);
"""
# Columns added to auth_badges after it first shipped (service-level badges, issue 15).
BADGE_COLUMNS = (
    ("level", "TEXT NOT NULL DEFAULT ''"),
    ("revoked_at", "REAL NOT NULL DEFAULT 0"),
    ("revoke_reason", "TEXT NOT NULL DEFAULT ''"),
)
