"""Between the wire (`kodosumi.v1.ledger_pb2`) and the ledger's types."""

from __future__ import annotations

from kodosumi.settlement import (
    EXPIRED,
    OPEN,
    RELEASED,
    SETTLED,
    Balance,
    Entry,
    Hold,
    units_text,
)
from kodosumi.v1 import ledger_pb2 as pb
from registryd.codec import timestamp
from registryd.ledger.model import BudgetUse

_STATES = {
    OPEN: pb.HOLD_STATE_OPEN,
    SETTLED: pb.HOLD_STATE_SETTLED,
    RELEASED: pb.HOLD_STATE_RELEASED,
    EXPIRED: pb.HOLD_STATE_EXPIRED,
}


def hold_to_pb(hold: Hold) -> pb.Hold:
    return pb.Hold(
        hold_id=hold.hold_id,
        key=hold.key,
        account=hold.account,
        payee=hold.payee,
        currency=hold.currency,
        amount=units_text(hold.units),
        state=_STATES[hold.state],
        settled_amount=units_text(hold.settled_units),
        receipt_id=hold.receipt_id,
        create_time=timestamp(hold.created_at),
        expire_time=timestamp(hold.expires_at),
    )


def entry_to_pb(entry: Entry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=entry.entry_id,
        kind=entry.kind,
        debit=entry.debit,
        credit=entry.credit,
        currency=entry.currency,
        amount=units_text(entry.units),
        time=timestamp(entry.at),
        by=entry.by,
        memo=entry.memo,
        hold_id=entry.hold_id,
        receipt_id=entry.receipt_id,
    )


def balance_to_pb(balance: Balance) -> pb.AccountBalance:
    return pb.AccountBalance(
        account=balance.account,
        currency=balance.currency,
        balance=units_text(balance.units),
        held=units_text(balance.held_units),
        available=units_text(balance.available_units),
    )


def budget_to_pb(use: BudgetUse) -> pb.Budget:
    budget = use.budget
    return pb.Budget(
        subject=budget.subject,
        currency=budget.currency,
        period=budget.period,
        limit=units_text(budget.limit_units),
        used=units_text(use.used_units),
        remaining=units_text(use.remaining_units),
        period_key=use.period_key.partition(":")[2],
    )
