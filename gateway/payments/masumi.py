"""The Masumi payment service as a backend, over its HTTP API (`/api/v1`, header `token`).

Shapes follow the service's own route schemas (masumi-payment-service, src/routes/api/
payments): every answer is `{"status": "success", "data": {...}}` or
`{"status": "error", "error": {"message": ...}}`; times are Unix milliseconds as strings.

- request:        POST /payment/  {inputHash, network, agentIdentifier, RequestedFunds?,
                  payByTime, submitResultTime, identifierFromPurchaser, metadata}
- lock_state:     POST /payment/resolve-blockchain-identifier {blockchainIdentifier, network}
                  -> data.onChainState (`FundsLocked` is paid; null is not yet)
- submit_result:  POST /payment/submit-result {network, submitResultHash, blockchainIdentifier}
- release:        POST /payment/authorize-refund {blockchainIdentifier, network} when the
                  buyer asked for a refund; otherwise no result is ever submitted and the
                  smart contract lets the buyer withdraw after submitResultTime.
- healthy:        GET /health
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx

from gateway.config import MasumiSettings, ServiceConfig
from gateway.jobs import Job
from gateway.payments.backend import LockState, PaymentRefused, PaymentRequest, PaymentUnavailable

__all__ = ["MasumiBackend"]

_LOCKED = {"FundsLocked", "ResultSubmitted", "RefundRequested", "Disputed", "WithdrawAuthorized"}
_REFUND_STATES = {"RefundRequested", "Disputed"}


def _iso(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _ms(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


class MasumiBackend:
    name = "masumi"

    def __init__(
        self,
        settings: MasumiSettings,
        *,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._now = now
        self._http = httpx.AsyncClient(
            base_url=f"{settings.url}/api/v1",
            headers={"token": settings.api_key, "accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise PaymentUnavailable(f"Masumi payment service unreachable: {e}") from None
        if response.status_code >= 500 or response.status_code == 429:
            retry = _ms(response.headers.get("retry-after", "5")) or 5
            raise PaymentUnavailable(
                f"Masumi payment service answered {response.status_code}", float(retry)
            )
        try:
            payload = response.json()
        except ValueError:
            raise PaymentUnavailable("Masumi payment service answered no JSON") from None
        if response.status_code >= 400 or payload.get("status") != "success":
            message = (
                (payload.get("error") or {}).get("message") if isinstance(payload, dict) else ""
            )
            raise PaymentRefused(
                f"Masumi payment service refused {path} ({response.status_code}): {message}"
            )
        return payload.get("data") or {}

    async def request(self, job: Job, service: ServiceConfig) -> PaymentRequest:
        now = self._now()
        body: dict[str, Any] = {
            "inputHash": job.input_hash,
            "network": self.settings.network,
            "agentIdentifier": service.agent_identifier,
            "payByTime": _iso(now + self.settings.pay_window_seconds),
            "submitResultTime": _iso(now + self.settings.submit_window_seconds),
            "identifierFromPurchaser": job.purchaser,
            "metadata": f"kodosumi job {job.job_id}",
        }
        if service.price is not None:
            # A priced service is registered with Dynamic pricing: the amount goes along.
            body["RequestedFunds"] = [
                {"amount": str(int(service.price.amount)), "unit": service.price.unit}
            ]
        data = await self._call("POST", "/payment/", body)
        ref = data.get("blockchainIdentifier")
        if not isinstance(ref, str) or not ref:
            raise PaymentRefused("Masumi payment service answered without a blockchainIdentifier")
        info = {
            "blockchainIdentifier": ref,
            "payByTime": _ms(data.get("payByTime")),
            "submitResultTime": _ms(data.get("submitResultTime")),
            "unlockTime": _ms(data.get("unlockTime")),
            "externalDisputeUnlockTime": _ms(data.get("externalDisputeUnlockTime")),
            "agentIdentifier": data.get("agentIdentifier") or service.agent_identifier,
            "sellerVKey": service.seller_vkey
            or ((data.get("SmartContractWallet") or {}).get("walletVkey") or ""),
            "amounts": data.get("RequestedFunds") or [],
        }
        return PaymentRequest(ref, info)

    async def _payment(self, job: Job) -> dict[str, Any]:
        body = {"blockchainIdentifier": job.payment_ref, "network": self.settings.network}
        data = await self._call("POST", "/payment/resolve-blockchain-identifier", body)
        return data if isinstance(data, dict) else {}

    async def lock_state(self, job: Job) -> LockState:
        payment = await self._payment(job)
        state = payment.get("onChainState")
        if state in _LOCKED:
            return LockState.LOCKED
        if state == "FundsOrDatumInvalid":
            return LockState.INVALID
        pay_by = _ms(payment.get("payByTime") or job.payment_info.get("payByTime"))
        if state is None and pay_by and self._now() * 1000 > pay_by:
            return LockState.EXPIRED
        return LockState.PENDING

    async def submit_result(self, job: Job, result_hash: str) -> None:
        body = {
            "network": self.settings.network,
            "submitResultHash": result_hash,
            "blockchainIdentifier": job.payment_ref,
        }
        try:
            await self._call("POST", "/payment/submit-result", body)
        except PaymentRefused:
            # Repeated after a crash: the service already moved on from WaitingForExternal-
            # Action. Done if it holds our hash.
            payment = await self._payment(job)
            held = (payment.get("NextAction") or {}).get("resultHash") or payment.get("resultHash")
            if held != result_hash:
                raise

    async def release(self, job: Job, reason: str) -> None:
        if not job.payment_ref:
            return
        payment = await self._payment(job)
        if payment.get("onChainState") in _REFUND_STATES:
            body = {"blockchainIdentifier": job.payment_ref, "network": self.settings.network}
            await self._call("POST", "/payment/authorize-refund", body)
        # Otherwise nothing to sign: without a submitted result the buyer withdraws the
        # locked funds after submitResultTime, and an unpaid request simply expires.

    async def healthy(self) -> bool:
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def close(self) -> None:
        await self._http.aclose()
