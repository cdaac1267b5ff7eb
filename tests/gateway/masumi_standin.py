"""A stand-in for the Masumi payment service, in process, for the gateway's tests.

It is NOT the payment service: no chain, no wallets. It follows the real service's HTTP API
for the calls a selling agent makes (masumi-payment-service, src/routes/api/payments: the
`/api/v1` prefix, the `token` header, the `{"status": "success", "data": ...}` envelope and
`{"status": "error", "error": {"message": ...}}` errors, times as Unix milliseconds in strings,
the same field names and checks: hex `inputHash`, `identifierFromPurchaser` of 14 to 26 hex
characters, `agentIdentifier` of 57 to 250 characters, `network` Preprod or Mainnet), and
keeps the payments' `onChainState` and `NextAction` as the real one moves them. What the chain
would do (a buyer locking funds) the test does with `lock()`; `down` answers 503 as a service
in trouble does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import socket
import threading
import time
from collections import Counter
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "standin-api-key-0123456789"
_HEX = re.compile(r"^[0-9a-fA-F]*$")
NETWORKS = ("Preprod", "Mainnet")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "error": {"message": message}}, status_code=status)


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data})


def _ms(text: Any) -> int:
    return int(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000)


class MasumiStandIn:
    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.down = False
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- what the chain does ------------------------------------------------------------

    def lock(self, blockchain_identifier: str) -> None:
        payment = self.payments[blockchain_identifier]
        payment["onChainState"] = "FundsLocked"
        payment["NextAction"]["requestedAction"] = "WaitingForExternalAction"

    def request_refund(self, blockchain_identifier: str) -> None:
        self.payments[blockchain_identifier]["onChainState"] = "RefundRequested"

    # -- the API --------------------------------------------------------------------------

    def _guard(self, request: Request) -> JSONResponse | None:
        if self.down:
            return _error(503, "Service unavailable")
        if request.headers.get("token") != API_KEY:
            return _error(401, "Unauthorized, invalid authentication token provided")
        return None

    async def _body(self, request: Request) -> dict[str, Any] | JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Invalid JSON")
        if not isinstance(body, dict):
            return _error(400, "Invalid input")
        if body.get("network") not in NETWORKS:
            return _error(400, "network: Invalid enum value")
        return body

    async def health(self, request: Request) -> JSONResponse:
        if self.down:
            return _error(503, "Service unavailable")
        return _ok({"status": "ok"})

    async def create(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused:
            return refused
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        self.calls["POST /payment/"] += 1
        purchaser = str(body.get("identifierFromPurchaser", ""))
        input_hash = str(body.get("inputHash", ""))
        agent = str(body.get("agentIdentifier", ""))
        if not 14 <= len(purchaser) <= 26 or not _HEX.match(purchaser):
            return _error(400, "Purchaser identifier is not a valid hex string")
        if not input_hash or len(input_hash) > 250 or not _HEX.match(input_hash):
            return _error(400, "Input hash is not a valid hex string")
        if not 57 <= len(agent) <= 250:
            return _error(400, "agentIdentifier: String must contain at least 57 character(s)")
        now = int(time.time() * 1000)
        pay_by = _ms(body["payByTime"])
        submit = _ms(body["submitResultTime"])
        if pay_by > submit - 5 * 60 * 1000:
            return _error(400, "Pay by time must be before submit result time (min. 5 minutes)")
        if pay_by < now - 5 * 60 * 1000:
            return _error(400, "Pay by time must be in the future (max. 5 minutes)")
        ident = secrets.token_hex(32)
        payment = {
            "id": secrets.token_hex(12),
            "createdAt": dt.datetime.now(dt.UTC).isoformat(),
            "updatedAt": dt.datetime.now(dt.UTC).isoformat(),
            "blockchainIdentifier": ident,
            "agentIdentifier": agent,
            "agentName": None,
            "pricingType": "Dynamic" if body.get("RequestedFunds") else "Fixed",
            "lastCheckedAt": None,
            "payByTime": str(pay_by),
            "submitResultTime": str(submit),
            "unlockTime": str(submit + 6 * 3600 * 1000),
            "externalDisputeUnlockTime": str(submit + 12 * 3600 * 1000),
            "collateralReturnLovelace": None,
            "buyerReturnAddress": None,
            "sellerReturnAddress": None,
            "requestedById": "standin-key",
            "resultHash": None,
            "inputHash": input_hash,
            "totalBuyerCardanoFees": 0,
            "totalSellerCardanoFees": 0,
            "cooldownTime": 0,
            "cooldownTimeOtherParty": 0,
            "onChainState": None,
            "NextAction": {
                "requestedAction": "WaitingForExternalAction",
                "errorType": None,
                "errorNote": None,
                "resultHash": None,
            },
            "CurrentTransaction": None,
            "RequestedFunds": body.get("RequestedFunds") or [{"amount": "10000000", "unit": ""}],
            "WithdrawnForSeller": [],
            "WithdrawnForBuyer": [],
            "PaymentSource": {
                "id": "source",
                "network": body["network"],
                "paymentSourceType": "Web3CardanoV1",
                "smartContractAddress": "addr_test1standin",
                "policyId": agent[:56],
            },
            "BuyerWallet": None,
            "SmartContractWallet": {
                "id": "wallet",
                "walletVkey": "standin-seller-vkey",
                "walletAddress": "addr_test1seller",
            },
            "metadata": body.get("metadata"),
            "identifierFromPurchaser": purchaser,
        }
        self.payments[ident] = payment
        return _ok(payment)

    async def resolve(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused:
            return refused
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        payment = self.payments.get(str(body.get("blockchainIdentifier")))
        if payment is None:
            return _error(404, "Payment not found")
        return _ok(payment)

    async def submit_result(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused:
            return refused
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        digest = str(body.get("submitResultHash", ""))
        if len(digest) != 64 or not _HEX.match(digest):
            return _error(400, "submitResultHash must be a 64-char hex sha256 digest")
        payment = self.payments.get(str(body.get("blockchainIdentifier")))
        if (
            payment is None
            or payment["onChainState"] not in ("FundsLocked", "RefundRequested", "Disputed")
            or payment["NextAction"]["requestedAction"] != "WaitingForExternalAction"
        ):
            return _error(404, "Payment not found or in invalid state")
        self.calls["POST /payment/submit-result"] += 1
        payment["NextAction"] = {
            "requestedAction": "SubmitResultRequested",
            "errorType": None,
            "errorNote": None,
            "resultHash": digest,
        }
        return _ok(payment)

    async def authorize_refund(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused:
            return refused
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        payment = self.payments.get(str(body.get("blockchainIdentifier")))
        if payment is None or payment["onChainState"] not in ("Disputed", "RefundRequested"):
            return _error(404, "Payment not found or in invalid state")
        self.calls["POST /payment/authorize-refund"] += 1
        payment["NextAction"]["requestedAction"] = "AuthorizeRefundRequested"
        return _ok(payment)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/health", self.health, methods=["GET"]),
                Route("/api/v1/health/", self.health, methods=["GET"]),
                Route("/api/v1/payment/", self.create, methods=["POST"]),
                Route(
                    "/api/v1/payment/resolve-blockchain-identifier",
                    self.resolve,
                    methods=["POST"],
                ),
                Route("/api/v1/payment/submit-result", self.submit_result, methods=["POST"]),
                Route("/api/v1/payment/authorize-refund", self.authorize_refund, methods=["POST"]),
            ]
        )

    # -- running it ------------------------------------------------------------------------

    def start(self) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        )
        server = self._server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name="masumi-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
