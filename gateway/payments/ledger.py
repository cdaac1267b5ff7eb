"""The local ledger as a backend (the default): the registry's double-entry ledger, reached
through `kodosumi.ledger_client.LedgerClient` with the gateway's own identity (its account
is `gateway/<id>`, the payee of every settlement).

- request:       Reserve the price of the buyer's funds under the job id (a hold): the funds
                 are locked at once, or the buyer cannot pay (402, nothing launched).
- lock_state:    the hold is open -> locked; it lapsed -> expired.
- submit_result: Settle the hold with the price, receipt id `kodogate/<gateway>/<job>`
                 (idempotent: a repeat after a crash posts nothing twice).
- release:       Release the hold.

Who the buyer is cannot come from MIP-003 (it has no authentication): a purchaser sends an
API key in the `token` header (as the Masumi payment service's callers do), and
`[payments.ledger.purchasers]` maps the SHA-256 of each key to a ledger account.
"""

from __future__ import annotations

from decimal import Decimal

from gateway.config import ServiceConfig
from gateway.jobs import Job
from gateway.payments.backend import LockState, PaymentRefused, PaymentRequest, PaymentUnavailable
from kodosumi.errors import KodosumiError, NotFound, ResourceExhausted, Unavailable
from kodosumi.ledger_client import LedgerClient, LedgerTarget
from kodosumi.settlement import EXPIRED, OPEN, RELEASED, SETTLED, Hold

__all__ = ["LedgerBackend"]


class LedgerBackend:
    name = "ledger"

    def __init__(self, target: LedgerTarget, gateway_id: str, hold_ttl_seconds: float) -> None:
        self.client = LedgerClient(target)
        self.gateway_id = gateway_id
        self.hold_ttl_seconds = hold_ttl_seconds

    def _key(self, job: Job) -> str:
        return f"kodogate/{job.job_id}"

    async def _call(self, coroutine: object) -> Hold:
        try:
            return await coroutine  # type: ignore[misc,no-any-return]
        except Unavailable as e:
            raise PaymentUnavailable(str(e)) from None
        except ResourceExhausted as e:
            raise PaymentRefused(str(e), status=402) from None
        except KodosumiError as e:
            raise PaymentRefused(f"{e.reason or type(e).__name__}: {e}") from None

    def _terms(self, job: Job) -> tuple[Decimal, str]:
        return Decimal(str(job.payment_info.get("amount", "0"))), str(
            job.payment_info.get("currency", "")
        )

    async def request(self, job: Job, service: ServiceConfig) -> PaymentRequest:
        if service.price is None:
            raise PaymentRefused(f"service {service.path!r} has no price")
        if not job.buyer:
            raise PaymentRefused("no buyer account (the `token` header)", status=401)
        amount, currency = service.price.amount, service.price.currency
        hold = await self._call(
            self.client.reserve(job.buyer, amount, currency, self._key(job), self.hold_ttl_seconds)
        )
        info = {
            "blockchainIdentifier": "",
            "ledgerHold": hold.hold_id,
            "payByTime": int(hold.created_at * 1000),
            "submitResultTime": int(hold.expires_at * 1000),
            "unlockTime": int(hold.expires_at * 1000),
            "externalDisputeUnlockTime": int(hold.expires_at * 1000),
            "agentIdentifier": f"gateway/{self.gateway_id}/{service.path}",
            "sellerVKey": "",
            "amounts": [{"amount": format(amount, "f"), "unit": currency}],
            "amount": format(amount, "f"),
            "currency": currency,
        }
        return PaymentRequest(hold.hold_id, info)

    async def lock_state(self, job: Job) -> LockState:
        try:
            hold = await self._call(self.client.get_hold(self._key(job)))
        except PaymentRefused:
            return LockState.INVALID
        if hold.state in (OPEN, SETTLED):
            return LockState.LOCKED
        return LockState.EXPIRED if hold.state in (EXPIRED, RELEASED) else LockState.INVALID

    async def submit_result(self, job: Job, result_hash: str) -> None:
        amount, currency = self._terms(job)
        receipt = f"kodogate/{self.gateway_id}/{job.job_id}"
        try:
            await self.client.settle(self._key(job), amount, currency, receipt)
        except Unavailable as e:
            raise PaymentUnavailable(str(e)) from None
        except KodosumiError as e:
            raise PaymentRefused(f"{e.reason or type(e).__name__}: {e}") from None

    async def release(self, job: Job, reason: str) -> None:
        try:
            await self.client.release(self._key(job))
        except NotFound:
            return  # never reserved
        except Unavailable as e:
            raise PaymentUnavailable(str(e)) from None
        except KodosumiError:
            return  # settled, expired or released already: nothing is held any more

    async def healthy(self) -> bool:
        try:
            await self.client.balances()
        except KodosumiError:
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
