"""The node's link to the registry's ledger (docs/market.md, "Budgets and settlement"): it
reserves a quoted run's ceiling against its buyer before the launch is stored, and settles
each receipt — the receipt's amount from the buyer to this node's operator account, the rest
of the hold released — once it is issued.

It plugs into the node's contracts (`kodosumid/market/`) through their two ports: `reserve`
is a launch hook (raising refuses the launch: `BUDGET_EXHAUSTED`, `INSUFFICIENT_FUNDS`, or
`LEDGER_UNAVAILABLE` when the registry cannot be reached — nothing runs unpaid), `settle`
a receipt sink. A settlement the registry cannot take now is kept and retried with backoff
until it is posted; replaying it is safe, the ledger posts each receipt id once.

The hold is keyed by the execution id, so a settlement finds it without state of its own,
and after a restart the node asks the ledger for its open holds and settles those whose runs
have ended (`recover`): a receipt the registry missed before a stop is not lost.
A priced run launched without a quote had no hold: its receipt is charged after the fact
(reserved and settled at once) when the buyer's funds and budgets allow, else logged as
unpaid. Only the `Settlement` protocol is used: the registry's ledger, or any backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from kodosumi.authz import Principal
from kodosumi.errors import KodosumiError, PermissionDenied, ResourceExhausted, Unavailable
from kodosumi.pricing import Price
from kodosumi.settlement import HoldNotFound, Settlement
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumid.network.backoff import Backoff, TimeSource, is_transient

log = logging.getLogger(__name__)

# Identity kinds that hold an account the node may charge.
BUYER_KINDS = ("user", "gateway")
# A hold outlives the run it pays for by this much (the receipt is issued after the end).
HOLD_GRACE_SECONDS = 3600.0
# Runs shorter than this (with the grace) use the ledger's default hold time (one day).
DEFAULT_HOLD_SECONDS = 86_400.0


class _Limits(Protocol):
    @property
    def max_seconds(self) -> Decimal: ...


class QuotedLaunch(Protocol):
    """What a launch hook is given of the quote it redeems (`kodosumid.market.QuoteTerms`)."""

    @property
    def ceiling(self) -> Decimal: ...

    @property
    def price(self) -> Price | None: ...

    @property
    def limits(self) -> _Limits: ...


class _StoredReceipt(Protocol):
    @property
    def receipt_id(self) -> str: ...

    @property
    def execution_id(self) -> str: ...

    @property
    def owner(self) -> str: ...


class IssuedReceipt(Protocol):
    """What a receipt sink is given (`kodosumid.market.receipts.Receipt`)."""

    @property
    def stored(self) -> _StoredReceipt: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def currency(self) -> str: ...


# The receipt of an execution, issued now if it ended unreceipted; None while it runs or when
# nothing is charged (`kodosumid.market.receipts.ReceiptIssuer.issue`).
ReceiptOf = Callable[[str], Awaitable[IssuedReceipt | None]]


def buyer_account(identity: str) -> str | None:
    """The ledger account of a buyer's identity (`user/alice`), None when it holds none."""
    try:
        parsed = SpiffeId.parse(identity)
    except InvalidSpiffeId:
        return None
    kind = parsed.kind.value
    return f"{kind}/{parsed.name}" if kind in BUYER_KINDS else None


@dataclass(frozen=True, slots=True)
class _Settlement:
    receipt_id: str
    execution_id: str
    owner: str
    amount: Decimal
    currency: str


@dataclass
class LedgerLink:
    settlement: Settlement
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=60.0))
    time: TimeSource = field(default_factory=TimeSource)
    # Settlements the ledger could not take yet, by receipt id (retried by `run`).
    pending: dict[str, _Settlement] = field(default_factory=dict)
    # Set by the node: `run` first settles the holds a stop left open whose runs have ended.
    receipt_of: ReceiptOf | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # -- the launch hook ---------------------------------------------------------------------

    async def reserve(self, principal: Principal, terms: QuotedLaunch, execution_id: str) -> None:
        """Hold the quote's ceiling of the caller's funds under the execution id."""
        if terms.price is None or terms.ceiling <= 0:
            return  # nothing can be charged
        account = buyer_account(principal.id)
        if account is None:
            raise PermissionDenied(
                f"{principal.id} holds no account to pay a priced run from",
                reason="PERMISSION_DENIED",
            )
        seconds = float(terms.limits.max_seconds) + HOLD_GRACE_SECONDS
        ttl = seconds if seconds > DEFAULT_HOLD_SECONDS else 0.0
        try:
            await self.settlement.reserve(
                account, terms.ceiling, terms.price.currency, execution_id, ttl
            )
        except (ResourceExhausted, Unavailable):
            raise  # the caller's budget or funds, or the registry away: said as it is
        except KodosumiError as e:
            # Anything else is between this node and the ledger, not the caller's doing.
            log.error("ledger refused the hold of %s: %s (%s)", execution_id, e.message, e.reason)
            raise Unavailable(
                f"the ledger cannot take this run's payment: {e.message}",
                reason="LEDGER_UNAVAILABLE",
            ) from None

    # -- the receipt sink --------------------------------------------------------------------

    async def settle(self, receipt: IssuedReceipt) -> None:
        """Post the receipt (or keep it for `run` to retry while the ledger is away)."""
        stored = receipt.stored
        job = _Settlement(
            stored.receipt_id, stored.execution_id, stored.owner, receipt.amount, receipt.currency
        )
        if not job.currency:
            return  # a free flow's receipt: nothing was held, nothing is due
        try:
            await self._post(job)
        except KodosumiError as e:
            if not is_transient(e):
                log.error("receipt %s not settled: %s (%s)", job.receipt_id, e.message, e.reason)
                return
            log.warning("receipt %s: ledger away (%s); settling later", job.receipt_id, e.message)
            self.pending[job.receipt_id] = job
            self._wake.set()

    async def _post(self, job: _Settlement) -> None:
        try:
            done = await self.settlement.settle(
                job.execution_id, job.amount, job.currency, job.receipt_id
            )
        except HoldNotFound:
            await self._charge_unheld(job)
            return
        if done.replayed:
            log.info("receipt %s was settled before", job.receipt_id)

    async def _charge_unheld(self, job: _Settlement) -> None:
        """A run launched without a quote: charge its receipt now if the buyer can pay."""
        account = buyer_account(job.owner)
        if job.amount <= 0 or account is None:
            return
        try:
            await self.settlement.reserve(account, job.amount, job.currency, job.execution_id)
        except ResourceExhausted as e:
            log.warning(
                "receipt %s (%s %s) unpaid: %s", job.receipt_id, job.amount, job.currency, e.message
            )
            return
        await self.settlement.settle(job.execution_id, job.amount, job.currency, job.receipt_id)

    # -- retries -------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Settle this node's open holds whose runs have ended (their receipts were issued,
        or are issued now): what a stop or crash left unsettled. How many were settled."""
        if self.receipt_of is None:
            return 0
        settled = 0
        for hold in await self.settlement.open_holds():
            receipt = await self.receipt_of(hold.key)
            if receipt is not None and receipt.stored.receipt_id not in self.pending:
                await self.settle(receipt)
                settled += 1
        if settled:
            log.info("settled %d receipts left open by an earlier run of the node", settled)
        return settled

    async def _recover_when_reachable(self) -> None:
        attempt = 0
        while True:
            try:
                await self.recover()
                return
            except KodosumiError as e:
                if not is_transient(e):
                    log.error("open holds not recovered: %s (%s)", e.message, e.reason)
                    return
            await self.time.sleep(self.backoff.delay(attempt, self.time.random))
            attempt += 1

    async def run(self) -> None:
        """Settle what an earlier run left open, then retry kept settlements with backoff
        until each is posted (runs until cancelled)."""
        await self._recover_when_reachable()
        attempt = 0
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                attempt = 0
            await self.time.sleep(self.backoff.delay(attempt, self.time.random))
            for receipt_id, job in list(self.pending.items()):
                try:
                    await self._post(job)
                except KodosumiError as e:
                    if is_transient(e):
                        attempt += 1
                        break
                    log.error("receipt %s not settled: %s (%s)", receipt_id, e.message, e.reason)
                else:
                    log.info("receipt %s settled after a retry", receipt_id)
                self.pending.pop(receipt_id, None)
