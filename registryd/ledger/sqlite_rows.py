"""The ledger's tables in the registry's database and the mapping of their rows (the SQLite
store's schema, beside `sqlite_store.py`)."""

from __future__ import annotations

import json
from typing import Any

from kodosumi.settlement import Entry, Hold

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_entries (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    currency TEXT NOT NULL,
    units TEXT NOT NULL,
    at REAL NOT NULL,
    by TEXT NOT NULL,
    memo TEXT NOT NULL,
    hold_id TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_entries_receipt ON ledger_entries (receipt_id)
    WHERE receipt_id != '';
CREATE UNIQUE INDEX IF NOT EXISTS ledger_entries_key ON ledger_entries (key) WHERE key != '';
CREATE INDEX IF NOT EXISTS ledger_entries_debit ON ledger_entries (debit, entry_id);
CREATE INDEX IF NOT EXISTS ledger_entries_credit ON ledger_entries (credit, entry_id);
CREATE INDEX IF NOT EXISTS ledger_entries_hold ON ledger_entries (hold_id) WHERE hold_id != '';
CREATE TABLE IF NOT EXISTS ledger_balances (
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    units TEXT NOT NULL,
    held_units TEXT NOT NULL,
    PRIMARY KEY (account, currency)
);
CREATE TABLE IF NOT EXISTS ledger_holds (
    hold_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    key TEXT NOT NULL,
    account TEXT NOT NULL,
    payee TEXT NOT NULL,
    currency TEXT NOT NULL,
    units TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL,
    settled_units TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    closed_at REAL NOT NULL,
    charges TEXT NOT NULL,
    UNIQUE (holder, key)
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_holds_receipt ON ledger_holds (receipt_id)
    WHERE receipt_id != '';
CREATE INDEX IF NOT EXISTS ledger_holds_open ON ledger_holds (expires_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS ledger_holds_account ON ledger_holds (account, created_at);
CREATE TABLE IF NOT EXISTS ledger_budget_use (
    subject TEXT NOT NULL,
    period_key TEXT NOT NULL,
    currency TEXT NOT NULL,
    units TEXT NOT NULL,
    PRIMARY KEY (subject, period_key, currency)
);
CREATE TABLE IF NOT EXISTS ledger_budgets (
    subject TEXT NOT NULL,
    currency TEXT NOT NULL,
    period TEXT NOT NULL,
    limit_units TEXT NOT NULL,
    set_at REAL NOT NULL,
    set_by TEXT NOT NULL,
    PRIMARY KEY (subject, currency, period)
);
"""

HOLD_COLUMNS = (
    "hold_id, holder, key, account, payee, currency, units, created_at, expires_at, state, "
    "settled_units, receipt_id, closed_at, charges"
)
ENTRY_COLUMNS = (
    "entry_id, kind, debit, credit, currency, units, at, by, memo, hold_id, receipt_id, key"
)


def hold_of(row: Any) -> Hold:
    (hold_id, holder, key, account, payee, currency, units, created, expires, state, settled) = row[
        :11
    ]
    receipt_id, closed_at, charges = row[11:]
    return Hold(
        hold_id,
        holder,
        key,
        account,
        payee,
        currency,
        int(units),
        created,
        expires,
        state,
        int(settled),
        receipt_id,
        closed_at,
        tuple((str(s), str(p)) for s, p in json.loads(charges)),
    )


def entry_of(row: Any) -> Entry:
    entry_id, kind, debit, credit, currency, units, at, by, memo, hold_id, receipt_id, key = row
    return Entry(
        entry_id, kind, debit, credit, currency, int(units), at, by, memo, hold_id, receipt_id, key
    )
