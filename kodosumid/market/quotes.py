"""Quotes: a signed offer of this node to one caller for one run (flow, version, inputs), with
the price terms, a cost ceiling from the caller's limits, the node's measured service and an
expiry. A launch redeems it once (`redeem`); the run is then charged by its terms and
stopped at its ceiling (`meter.py`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from kodosumi.authz import Principal
from kodosumi.charges import AmountOverflow, Limits, ceiling
from kodosumi.clock import Clock
from kodosumi.contracts import QUOTE, read_contract, sign_contract
from kodosumi.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from kodosumid.auth.roles import check_flow_access
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry
from kodosumid.executions.launch import check_inputs
from kodosumid.market.claims import QuoteTerms, inputs_sha256
from kodosumid.market.model import StoredQuote
from kodosumid.market.stats import ServiceStats
from kodosumid.market.store import ContractStore

log = logging.getLogger(__name__)

DEFAULT_VALID_SECONDS = 600.0
MAX_VALID_SECONDS = 86400.0
MAX_SECONDS = 1e9
MAX_TOKENS = 10**15
# Unused, unexpired quotes one identity may hold (each is a stored row).
MAX_OPEN_QUOTES = 1000
# Unused quotes are deleted this long after they expired (a late launch still hears
# QUOTE_EXPIRED, not "not found"); used ones stay with their receipts.
PURGE_AFTER_NS = 3600 * 10**9
PURGE_EVERY_NS = 60 * 10**9

# The node's key and certificate chain (PEM), read when signing (renewed certificates);
# None for a node without a certificate (--insecure), which cannot sign.
Signer = Callable[[], tuple[bytes, bytes] | None]


# Told of every quoted launch before it is stored: (caller, quote terms, execution id).
# Raising refuses the launch and frees the quote (the ledger reserves the quote's ceiling
# against the caller's budget here, and refuses with BUDGET_EXHAUSTED).
LaunchHook = Callable[[Principal, QuoteTerms, str], Awaitable[None]]


def parse_limits(flow: FlowEntry, max_seconds: float, max_tokens: int) -> Limits:
    """The caller's limits, checked (INVALID_ARGUMENT naming `limits.<field>`)."""
    if not math.isfinite(max_seconds) or not 0 <= max_seconds <= MAX_SECONDS:
        raise InvalidArgument.field("limits.max_seconds", f"a number from 0 to {MAX_SECONDS:g}")
    if not 0 <= max_tokens <= MAX_TOKENS:
        raise InvalidArgument.field("limits.max_tokens", f"a whole number from 0 to {MAX_TOKENS}")
    price = flow.price
    seconds = max_seconds or flow.timeout_seconds
    if price is not None and price.per_second and not seconds:
        raise InvalidArgument.field(
            "limits.max_seconds",
            f"required: flow {flow.name!r} charges per second and has no timeout",
        )
    if price is not None and price.tokens and not max_tokens:
        raise InvalidArgument.field(
            "limits.max_tokens", f"required: flow {flow.name!r} charges per LLM token"
        )
    return Limits(Decimal(repr(float(seconds))).normalize(), max_tokens)


class Quotes:
    def __init__(
        self,
        *,
        node_id: str,
        catalog: Catalog,
        store: ContractStore,
        stats: ServiceStats,
        signer: Signer,
        clock: Clock,
    ) -> None:
        self.node_id = node_id
        self.catalog = catalog
        self.store = store
        self.stats = stats
        self.signer = signer
        self.clock = clock
        self.launch_hooks: list[LaunchHook] = []
        self._purged_ns = 0

    async def request(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        max_seconds: float = 0.0,
        max_tokens: int = 0,
        valid_seconds: float = 0.0,
    ) -> tuple[QuoteTerms, str]:
        """A signed quote for `principal` (its terms and its token)."""
        flow = self.catalog.get(flow_name)  # NOT_FOUND: quotes are for this node's flows
        check_flow_access(principal, flow)
        if flow.unavailable:
            raise FailedPrecondition(
                f"flow {flow.name!r} is unavailable: {flow.unavailable}",
                reason="FLOW_UNAVAILABLE",
            )
        limits = parse_limits(flow, max_seconds, max_tokens)
        if not math.isfinite(valid_seconds) or valid_seconds < 0:
            raise InvalidArgument.field("valid_seconds", "a number of seconds >= 0")
        check_inputs(flow, inputs)
        try:
            top = ceiling(flow.price, limits) if flow.price is not None else Decimal(0)
        except AmountOverflow as e:
            raise InvalidArgument.field("limits", f"the cost ceiling overflows: {e}") from None
        material = self.signer()
        if material is None:
            raise FailedPrecondition(
                "this node has no certificate to sign quotes with (it runs --insecure)",
                reason="QUOTES_UNAVAILABLE",
            )
        now_ns = self.clock.now_ns()
        await self._purge(now_ns)
        if await self.store.open_quotes(principal.id, now_ns) >= MAX_OPEN_QUOTES:
            raise QuotaExceeded(
                f"{principal.id} holds {MAX_OPEN_QUOTES} unused quotes of this node, the most "
                "it may (they expire, or launch with them)",
                quota="open_quotes",
                limit=MAX_OPEN_QUOTES,
                subject=principal.id,
            )
        valid = min(valid_seconds or DEFAULT_VALID_SECONDS, MAX_VALID_SECONDS)
        issued = round(now_ns / 1e9, 3)
        terms = QuoteTerms(
            quote_id=uuid.uuid4().hex,
            node_id=self.node_id,
            flow=flow.name,
            flow_version=flow.version,
            inputs_sha256=inputs_sha256(inputs),
            price=flow.price,
            limits=limits,
            ceiling=top,
            stats=await self.stats.of(flow.name),
            requester=principal.id,
            issued_at=issued,
            expires_at=round(issued + valid, 3),
        )
        key, chain = material
        token = sign_contract(QUOTE, terms.claims(), key, chain)
        await self.store.put_quote(
            StoredQuote(
                terms.quote_id,
                principal.id,
                flow.name,
                now_ns,
                int(terms.expires_at * 1e9),
                token,
            )
        )
        return terms, token

    async def _purge(self, now_ns: int) -> None:
        if now_ns - self._purged_ns < PURGE_EVERY_NS:
            return
        self._purged_ns = now_ns
        purged = await self.store.purge_quotes(now_ns - PURGE_AFTER_NS)
        if purged:
            log.info("purged %d expired unused quotes", purged)

    async def terms_of(self, quote_id: str) -> QuoteTerms | None:
        stored = await self.store.get_quote(quote_id)
        return QuoteTerms.from_claims(read_contract(stored.token)[1]) if stored else None

    async def redeem(
        self,
        principal: Principal,
        quote_id: str,
        flow: FlowEntry,
        inputs: dict[str, Any],
        execution_id: str,
    ) -> QuoteTerms:
        """Use the quote for this launch: the caller's own, unexpired, unused, for this flow
        (and version) and these inputs; then the launch hooks (a budget may refuse it)."""
        stored = await self.store.get_quote(quote_id)
        if stored is None:
            raise NotFound(f"no quote {quote_id!r} on this node", reason="QUOTE_NOT_FOUND")
        terms = QuoteTerms.from_claims(read_contract(stored.token)[1])
        if terms.requester != principal.id:
            raise PermissionDenied(
                f"quote {quote_id} was made for {terms.requester}, not for {principal.id}",
                reason="QUOTE_NOT_YOURS",
            )
        if self.clock.now() >= terms.expires_at:
            raise FailedPrecondition(
                f"quote {quote_id} expired; request a new one", reason="QUOTE_EXPIRED"
            )
        if stored.execution_id:
            raise FailedPrecondition(
                f"quote {quote_id} was used by execution {stored.execution_id} already",
                reason="QUOTE_USED",
            )
        mismatch = []
        if terms.flow != flow.name:
            mismatch.append(f"it is for flow {terms.flow!r}, not {flow.name!r}")
        elif terms.flow_version != flow.version:
            mismatch.append(
                f"it is for version {terms.flow_version!r} of the flow, now {flow.version!r}"
            )
        if terms.inputs_sha256 != inputs_sha256(inputs):
            mismatch.append("it is for other inputs (their sha256 differs)")
        if mismatch:
            raise FailedPrecondition(
                f"quote {quote_id} does not match this launch: {'; '.join(mismatch)}",
                reason="QUOTE_MISMATCH",
            )
        if not await self.store.claim(quote_id, execution_id):
            raise FailedPrecondition(
                f"quote {quote_id} was used by another launch already", reason="QUOTE_USED"
            )
        try:
            for hook in self.launch_hooks:
                await hook(principal, terms, execution_id)
        except BaseException:
            await self.store.release(quote_id, execution_id)
            raise
        return terms
