"""Receipts: what an ended run used and is charged, signed by this node.

Every run launched with a quote, and every run of a priced flow, gets one when its terminal
status is stored (`ReceiptIssuer.stored`, an execution observer): its usage folded from the
stored events (`fold.py`), the amount by the quote's price (else the flow's) after the
owner's free allowance of the period, never more than the quote's ceiling. Receipts are
kept in the contract store, one per execution (issuing twice gives the first), beyond the
execution's own retention: they are accounting records. A quoted run that ended while no
receipt could be issued (the node stopped in between) gets it when the node starts again
(`catch_up`).

`ReceiptSink`s are told of each receipt once it is stored — the port the ledger posts
receipts through. A failing sink is logged; the receipt stands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kodosumi.authz import ADMIN, Principal
from kodosumi.charges import FreeUsed, amount_text, charge, period_start
from kodosumi.clock import Clock
from kodosumi.contracts import RECEIPT, read_contract, sign_contract
from kodosumi.errors import NotFound
from kodosumi.pricing import Price
from kodosumi.statuses import TERMINAL, status_word
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.event_store import EventStore, ExecutionRecord, StatusChange
from kodosumid.market.claims import QuoteTerms, free_to_mapping
from kodosumid.market.fold import RunFold
from kodosumid.market.model import StoredReceipt
from kodosumid.market.quotes import Signer
from kodosumid.market.store import ContractStore

log = logging.getLogger(__name__)
READ_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Receipt:
    """A receipt as sinks get it: the stored one and its claims (what was signed)."""

    stored: StoredReceipt
    claims: dict[str, object]

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.claims["amount"]))

    @property
    def currency(self) -> str:
        return str(self.claims["currency"])


# Told of each stored receipt (the ledger posts it, idempotent by receipt id).
ReceiptSink = Callable[[Receipt], Awaitable[None]]


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 3)


class ReceiptIssuer:
    def __init__(
        self,
        *,
        node_id: str,
        catalog: Catalog,
        contracts: ContractStore,
        events: EventStore,
        signer: Signer,
        clock: Clock,
    ) -> None:
        self.node_id = node_id
        self.catalog = catalog
        self.contracts = contracts
        self.events = events
        self.signer = signer
        self.clock = clock
        self.sinks: list[ReceiptSink] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        # One receipt at a time: two runs of one owner must not both take the last free run.
        self._lock = asyncio.Lock()

    # -- ExecutionObserver: a terminal status stored -------------------------------------------

    def launched(self, record: ExecutionRecord) -> None:
        pass

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        if any(c.status in TERMINAL for c in changes):
            self.track(asyncio.get_running_loop().create_task(self._issue_logged(record)))

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep `task` until it is done (`drain` waits for it)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the receipts being issued (the node stops after them)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _issue_logged(self, record: ExecutionRecord) -> None:
        try:
            await self.issue(record.execution_id)
        except Exception:
            log.exception("receipt of %s not issued", record.execution_id)

    async def catch_up(self) -> int:
        """Issue the receipts of quoted runs that ended without one (the node stopped in
        between); runs still going get theirs when they end. How many were issued."""
        issued = 0
        for execution_id in await self.contracts.unreceipted():
            try:
                if await self.issue(execution_id) is not None:
                    issued += 1
            except Exception:
                log.exception("receipt of %s not issued", execution_id)
        return issued

    # -- issuing ------------------------------------------------------------------------------

    def _price_of(self, flow: str) -> Price | None:
        try:
            return self.catalog.get(flow).price
        except NotFound:  # a peer's flow (the peer issues the receipt) or one removed since
            return None

    async def issue(self, execution_id: str) -> Receipt | None:
        """The receipt of an ended run (None: nothing to charge, or the node cannot sign)."""
        async with self._lock:
            existing = await self.contracts.get_receipt(execution_id)
            if existing is not None:
                return Receipt(existing, read_contract(existing.token)[1])
            record = await self.events.get_execution(execution_id)
            if record is None or not record.terminal:
                return None
            quote = await self.contracts.quote_of(execution_id)
            terms = QuoteTerms.from_claims(read_contract(quote.token)[1]) if quote else None
            price = terms.price if terms is not None else self._price_of(record.flow)
            if price is None and terms is None:
                return None
            material = self.signer()
            if material is None:
                return None
            fold = RunFold()
            after = 0
            while rows := await self.events.read_events(execution_id, after, READ_BATCH):
                for _, data in rows:
                    fold.feed(event_pb2.Event.FromString(data))
                after = rows[-1][0]
            now_ns = self.clock.now_ns()
            amount, free = await self._amount(record, price, terms, fold)
            receipt_id = uuid.uuid4().hex
            claims: dict[str, object] = {
                "jti": receipt_id,
                "node": self.node_id,
                "iat": _seconds(now_ns),
                "execution": execution_id,
                "quote": terms.quote_id if terms is not None else "",
                "flow": record.flow,
                "sub": record.owner,
                "status": status_word(record.status),
                "status_reason": record.status_reason[:500],
                "started": _seconds(fold.start_ns),
                "ended": _seconds(fold.end_ns or record.end_ns),
                "usage": _usage_claims(fold),
                "amount": amount_text(amount),
                "currency": price.currency if price is not None else "",
                "ceiling": amount_text(terms.ceiling) if terms is not None else "",
                "free_used": free_to_mapping(free),
            }
            key, chain = material
            stored = await self.contracts.put_receipt(
                StoredReceipt(
                    receipt_id,
                    execution_id,
                    record.owner,
                    record.flow,
                    str(claims["quote"]),
                    now_ns,
                    sign_contract(RECEIPT, claims, key, chain),
                    free,
                )
            )
            receipt = Receipt(stored, read_contract(stored.token)[1])
        for sink in self.sinks:
            try:
                await sink(receipt)
            except Exception:
                log.exception("receipt sink %r failed on %s", sink, receipt_id)
        return receipt

    async def _amount(
        self,
        record: ExecutionRecord,
        price: Price | None,
        terms: QuoteTerms | None,
        fold: RunFold,
    ) -> tuple[Decimal, FreeUsed]:
        if price is None:
            return Decimal(0), FreeUsed()
        used = FreeUsed()
        if price.free is not None:
            at = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)
            since = period_start(price.free.period, at)
            used = await self.contracts.free_used(
                record.owner, record.flow, int(since.timestamp() * 1e9)
            )
        charged = charge(price, fold.metered(), used)
        amount = charged.amount
        if terms is not None:
            amount = min(amount, terms.ceiling)  # the quote's promise: never more
        return amount, charged.free

    # -- reading ------------------------------------------------------------------------------

    async def get(self, principal: Principal, execution_id: str) -> StoredReceipt:
        """The receipt of an execution, for its owner or an admin only."""
        stored = await self.contracts.get_receipt(execution_id)
        if stored is None or not (ADMIN in principal.roles or stored.owner == principal.id):
            # Someone else's receipt is "not found": its existence is not the caller's business.
            raise NotFound(
                f"no receipt for execution {execution_id!r} (none yet: it runs, or its flow "
                "is free and it had no quote)",
                reason="RECEIPT_NOT_FOUND",
            )
        return stored


def _usage_claims(fold: RunFold) -> dict[str, object]:
    usage = fold.usage()
    return {
        "attempts": usage.attempt,
        "wall_seconds": amount_text(fold.seconds()),
        "cpu_seconds": round(usage.cpu_seconds, 3),
        "llm_calls": usage.llm_calls,
        "models": [
            {
                "model": m.model,
                "calls": m.calls,
                "input_tokens": m.input_tokens,
                "output_tokens": m.output_tokens,
            }
            for m in usage.models
        ],
        "tool_calls": usage.tool_calls,
        "input_bytes": usage.input_bytes,
        "output_bytes": usage.output_bytes,
        "artifact_bytes": usage.artifact_bytes,
    }
