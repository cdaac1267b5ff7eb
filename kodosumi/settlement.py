"""Settlement behind an interface (docs/market.md, "Budgets and settlement"): what a seller
(a node, a gateway) does with a buyer's money, whatever backend keeps it.

A seller *reserves* an amount of a buyer's funds before it does the work (a `Hold`, named by
the seller's own idempotency `key`), *settles* the hold with the amount its receipt states at
the end (one posting from the buyer's account to the seller's, idempotent by `receipt_id`),
or *releases* it when the work never happened. Holds count against the buyer's available
balance and budgets from the moment they are placed, so two sellers can never spend the same
funds; a hold that is neither settled nor released lapses at its expiry.

The default backend is the double-entry ledger in the registry (`registryd/ledger/`, reached
over gRPC through `kodosumi.ledger_client.LedgerClient`); a payment network (the gateway's
Masumi backend, issue 16) implements the same `Settlement` protocol. Nothing here knows gRPC.

Amounts are `Decimal`s of at most 18 integer and 9 fractional digits (as prices are:
`kodosumi.pricing.amount`); backends keep them as whole numbers of 10^-9 units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kodosumi.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
    ResourceExhausted,
)
from kodosumi.pricing import CURRENCY, MAX_FRACTION_DIGITS, amount

# Units of 10^-9: an amount is kept exact as a whole number.
UNITS_PER_ONE = 10**MAX_FRACTION_DIGITS
# No balance, held sum or budget use may reach 10^18 (in whole units of its currency).
MAX_UNITS = 10**18 * UNITS_PER_ONE

# Account names: `<kind>/<name>`. People and machines hold accounts by their identity's kind
# and name (`user/alice`, `node/n1`, `gateway/g1`); budgets are also kept for `group/<name>`;
# credit comes from `system/credit`, the one account that goes negative.
ACCOUNT_KINDS = ("user", "node", "gateway", "system")
BUDGET_KINDS = ("user", "group")
SYSTEM_CREDIT = "system/credit"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

# Hold states.
OPEN = "open"
SETTLED = "settled"
RELEASED = "released"
EXPIRED = "expired"
HOLD_STATES = (OPEN, SETTLED, RELEASED, EXPIRED)

# Budget periods (UTC calendar periods, like a price's free allowance).
PERIODS = ("day", "month")


def to_units(value: Decimal) -> int:
    return int(value * UNITS_PER_ONE)


def from_units(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_ONE).normalize() if units else Decimal(0)


def units_text(units: int) -> str:
    """An amount as the wire carries it: a plain decimal string ("0.05", "12", "-3.5")."""
    return format(from_units(units), "f")


def parse_amount(value: object, where: str, *, positive: bool = False) -> int:
    """A request's amount (a decimal string) in units; every mistake names `where`."""
    if isinstance(value, str) and not value.strip():
        raise InvalidArgument.field(where, "an amount is required (a decimal string)")
    number = amount(value, where)
    if positive and number <= 0:
        raise InvalidArgument.field(where, "an amount > 0")
    return to_units(number)


def check_currency(currency: str, where: str = "currency") -> str:
    if not CURRENCY.match(currency):
        raise InvalidArgument.field(
            where, 'an ISO 4217 code or token symbol in upper case ("EUR", "USDC")'
        )
    return currency


def check_key(key: str, where: str) -> str:
    """An idempotency key or receipt id: 1 to 200 printable ASCII characters, no spaces."""
    if not _KEY.match(key):
        raise InvalidArgument.field(where, "1 to 200 printable ASCII characters, no spaces")
    return key


def parse_account(text: str, where: str = "account", kinds: tuple[str, ...] = ACCOUNT_KINDS) -> str:
    """`kind/name` (a bare name is a user's account)."""
    kind, _, name = text.partition("/") if "/" in text else ("user", "", text)
    if kind not in kinds or not _NAME.match(name):
        raise InvalidArgument.field(
            where, f"an account {' | '.join(f'{k}/NAME' for k in kinds)} (or a user name)"
        )
    return f"{kind}/{name}"


@dataclass(frozen=True, slots=True)
class Hold:
    """Funds of `account` reserved by `holder` (a seller's account) under the holder's `key`.
    Settling pays at most `units` to `payee` (always the holder's own account)."""

    hold_id: str
    holder: str
    key: str
    account: str
    payee: str
    currency: str
    units: int
    created_at: float
    expires_at: float
    state: str = OPEN
    settled_units: int = 0
    receipt_id: str = ""
    closed_at: float = 0.0
    # The budgets it counts against: (subject, period key) pairs, e.g. ("group/ml", "2026-12").
    charges: tuple[tuple[str, str], ...] = ()

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)

    @property
    def settled_amount(self) -> Decimal:
        return from_units(self.settled_units)


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting: `units` move from `debit` to `credit`. A grant debits `system/credit`, a
    settlement the buyer. Every entry has both legs, so all balances always sum to zero."""

    entry_id: int
    kind: str  # "grant" or "settle"
    debit: str
    credit: str
    currency: str
    units: int
    at: float
    by: str = ""
    memo: str = ""
    hold_id: str = ""
    receipt_id: str = ""
    # The caller's idempotency key (grants); settlements are keyed by `receipt_id`.
    key: str = ""

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    currency: str
    units: int
    held_units: int = 0

    @property
    def available_units(self) -> int:
        return self.units - self.held_units


@dataclass(frozen=True, slots=True)
class Settled:
    hold: Hold
    # None when the receipt's amount was 0 (the hold is closed, nothing moves).
    entry: Entry | None
    # True when this receipt had been settled before: nothing was posted again.
    replayed: bool = False


class Settlement(Protocol):
    """What a seller asks of a settlement backend. The seller is the caller (its identity),
    so it acts on its own holds only and is always the payee."""

    async def reserve(
        self, account: str, amount: Decimal, currency: str, key: str, ttl_seconds: float = 0.0
    ) -> Hold:
        """Hold `amount` of `account`'s funds under `key`; the same call again returns the
        same hold. Refused (`BudgetExhausted`, `InsufficientFunds`) when the account's
        available balance or a budget of it cannot cover the amount."""
        ...

    async def settle(self, key: str, amount: Decimal, currency: str, receipt_id: str) -> Settled:
        """Pay `amount` (at most the held amount) of the hold `key` to the seller and close
        it; the rest is released. Replaying the same receipt posts nothing again."""
        ...

    async def release(self, key: str) -> Hold:
        """Close the hold `key` without paying anything (the work did not happen)."""
        ...

    async def get_hold(self, key: str) -> Hold:
        """The hold `key` of this seller (after a restart: settle or release it)."""
        ...

    async def open_holds(self) -> list[Hold]:
        """This seller's open holds, newest first (after a restart: which are still due)."""
        ...

    async def balances(self, account: str = "") -> list[Balance]:
        """Balances of `account` per currency (empty: the caller's own account)."""
        ...


# -- the errors a backend raises (reasons in kodosumi.errors.CATALOG) -----------------------------


class BudgetExhausted(QuotaExceeded):
    """A budget cannot cover the amount: RESOURCE_EXHAUSTED with a `QuotaFailure` naming the
    budget (`budget_month_EUR`, its subject and limit)."""

    def __init__(
        self, subject: str, period: str, currency: str, limit_units: int, remaining_units: int
    ) -> None:
        quota = f"budget_{period}_{currency}"
        ResourceExhausted.__init__(
            self,
            f"the {period}ly {currency} budget of {subject} cannot cover this: "
            f"{units_text(remaining_units)} of {units_text(limit_units)} left",
            reason="BUDGET_EXHAUSTED",
            metadata={
                "subject": subject,
                "period": period,
                "currency": currency,
                "limit": units_text(limit_units),
                "remaining": units_text(remaining_units),
            },
        )
        self.quota = quota
        self.limit = limit_units // UNITS_PER_ONE
        self.subject = subject
        self.description = f"{quota}: limit {units_text(limit_units)} {currency}"

    def __reduce__(self) -> tuple[object, ...]:
        m = self.metadata
        return (
            _rebuild_budget,
            (
                m["subject"],
                m["period"],
                m["currency"],
                to_units(Decimal(m["limit"])),
                to_units(Decimal(m["remaining"])),
            ),
        )


def _rebuild_budget(
    subject: str, period: str, currency: str, limit: int, remaining: int
) -> BudgetExhausted:
    return BudgetExhausted(subject, period, currency, limit, remaining)


class InsufficientFunds(ResourceExhausted):
    default_reason = "INSUFFICIENT_FUNDS"

    def __init__(self, account: str, currency: str, available_units: int) -> None:
        super().__init__(
            f"{account} has {units_text(available_units)} {currency} available, not enough",
            metadata={"account": account, "currency": currency},
        )


class HoldNotFound(NotFound):
    default_reason = "HOLD_NOT_FOUND"

    def __init__(self, key: str, message: str = "") -> None:
        # The same answer for another seller's hold: a seller learns nothing of others' keys.
        super().__init__(message or f"you hold no reservation with key {key!r}")


class HoldClosed(FailedPrecondition):
    default_reason = "HOLD_CLOSED"

    def __init__(self, hold: Hold) -> None:
        reason = "HOLD_EXPIRED" if hold.state == EXPIRED else "HOLD_CLOSED"
        super().__init__(f"the reservation {hold.key!r} is {hold.state}", reason=reason)


class HoldKeyReused(AlreadyExists):
    default_reason = "HOLD_KEY_REUSED"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the key {key!r} names a reservation of another account, amount or currency"
        )


class ReceiptUsed(AlreadyExists):
    default_reason = "RECEIPT_USED"

    def __init__(self, receipt_id: str) -> None:
        super().__init__(
            f"receipt {receipt_id!r} settled another reservation or another amount",
            metadata={"receipt_id": receipt_id},
        )


class CurrencyMismatch(InvalidArgument):
    default_reason = "CURRENCY_MISMATCH"

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(
            f"currency: the reservation is in {expected}, not {got}",
            reason="CURRENCY_MISMATCH",
        )


class SettleExceedsHold(InvalidArgument):
    default_reason = "SETTLE_EXCEEDS_HOLD"

    def __init__(self, held_units: int, currency: str) -> None:
        super().__init__(
            f"amount: more than the {units_text(held_units)} {currency} reserved",
            reason="SETTLE_EXCEEDS_HOLD",
        )


class BalanceLimit(FailedPrecondition):
    default_reason = "BALANCE_LIMIT"

    def __init__(self, account: str, currency: str) -> None:
        super().__init__(
            f"{account}'s {currency} balance would pass the ledger's limit (10^18)",
            metadata={"account": account},
        )
