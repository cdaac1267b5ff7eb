"""The thin `QuoteService` servicer: decode, call the market's domain, encode.

The guard authorized the method before this runs (kodosumid/auth/policy.py); who may see a
receipt is the domain's rule (its owner or an admin).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from kodosumi.charges import amount_text
from kodosumi.contracts import read_contract
from kodosumi.jsonvalue import struct_to_dict
from kodosumi.pricing import price_to_pb
from kodosumi.rpc.guard import current_principal
from kodosumi.statuses import PREFIX
from kodosumi.v1 import event_pb2, quote_pb2, quote_pb2_grpc
from kodosumid.market.claims import QuoteTerms
from kodosumid.market.service import Market

Context = grpc.aio.ServicerContext[Any, Any]


def _time(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def quote_message(terms: QuoteTerms, token: str) -> quote_pb2.Quote:
    quote = quote_pb2.Quote(
        quote_id=terms.quote_id,
        node_id=terms.node_id,
        flow=terms.flow,
        flow_version=terms.flow_version,
        inputs_sha256=terms.inputs_sha256,
        limits=quote_pb2.QuoteLimits(
            max_seconds=float(terms.limits.max_seconds), max_tokens=terms.limits.max_tokens
        ),
        ceiling=amount_text(terms.ceiling),
        stats=quote_pb2.QuoteStats(
            runs=terms.stats.runs,
            success_rate=terms.stats.success_rate,
            p50_seconds=terms.stats.p50_seconds,
            p95_seconds=terms.stats.p95_seconds,
        ),
        requester=terms.requester,
        issue_time=_time(terms.issued_at),
        expire_time=_time(terms.expires_at),
        token=token,
    )
    if terms.price is not None:
        price_to_pb(terms.price, quote.price)
    return quote


def receipt_message(token: str) -> quote_pb2.Receipt:
    """The receipt message of a token this node signed (its claims, and the token)."""
    claims = read_contract(token)[1]
    usage = claims["usage"]
    receipt = quote_pb2.Receipt(
        receipt_id=claims["jti"],
        node_id=claims["node"],
        execution_id=claims["execution"],
        quote_id=claims["quote"],
        flow=claims["flow"],
        owner=claims["sub"],
        status=event_pb2.ExecutionStatus.Value(PREFIX + claims["status"]),
        status_reason=claims["status_reason"],
        amount=claims["amount"],
        currency=claims["currency"],
        start_time=_time(claims["started"]),
        end_time=_time(claims["ended"]),
        issue_time=_time(claims["iat"]),
        token=token,
    )
    u = receipt.usage
    u.attempt = usage["attempts"]
    u.wall_seconds = float(usage["wall_seconds"])
    u.cpu_seconds = usage["cpu_seconds"]
    u.llm_calls = usage["llm_calls"]
    u.tool_calls = usage["tool_calls"]
    u.input_bytes = usage["input_bytes"]
    u.output_bytes = usage["output_bytes"]
    u.artifact_bytes = usage["artifact_bytes"]
    for m in usage["models"]:
        u.models.add(**m)
    free = claims["free_used"]
    receipt.free_used.runs = free["runs"]
    receipt.free_used.seconds = float(free["seconds"])
    receipt.free_used.tokens = free["tokens"]
    return receipt


class QuoteServicer(quote_pb2_grpc.QuoteServiceServicer):
    def __init__(self, market: Market) -> None:
        self.market = market

    async def RequestQuote(
        self, request: quote_pb2.RequestQuoteRequest, context: Context
    ) -> quote_pb2.RequestQuoteResponse:
        terms, token = await self.market.quotes.request(
            current_principal(),
            request.flow,
            struct_to_dict(request.inputs),
            max_seconds=request.limits.max_seconds,
            max_tokens=request.limits.max_tokens,
            valid_seconds=request.valid_seconds,
        )
        return quote_pb2.RequestQuoteResponse(quote=quote_message(terms, token))

    async def GetReceipt(
        self, request: quote_pb2.GetReceiptRequest, context: Context
    ) -> quote_pb2.GetReceiptResponse:
        stored = await self.market.receipts.get(current_principal(), request.execution_id)
        return quote_pb2.GetReceiptResponse(receipt=receipt_message(stored.token))
