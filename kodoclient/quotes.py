"""Quotes and receipts of a node (docs/market.md): ask for a signed quote, read a run's
signed receipt, and check either offline with the CA certificate (`kodosumi.contracts`).

`AsyncClient.quotes()` gives a `QuotesClient`; a quote is redeemed by
`AsyncClient.launch(..., quote_id=...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import quote_pb2, quote_pb2_grpc

if TYPE_CHECKING:
    from kodoclient._connection import Connection


class QuotesClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _stub(self) -> quote_pb2_grpc.QuoteServiceAsyncStub:
        connection = self._connection
        if connection._channel is None:
            connection._open()
        assert connection._channel is not None
        return quote_pb2_grpc.QuoteServiceStub(connection._channel)  # type: ignore[return-value]

    async def request(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        max_seconds: float = 0.0,
        max_tokens: int = 0,
        valid_seconds: float = 0.0,
        call_timeout: float | None = None,
    ) -> quote_pb2.Quote:
        """A quote signed by the node for running `flow` with `inputs` within the limits."""
        request = quote_pb2.RequestQuoteRequest(
            flow=flow,
            limits=quote_pb2.QuoteLimits(max_seconds=max_seconds, max_tokens=max_tokens),
            valid_seconds=valid_seconds,
        )
        dict_to_struct(dict(inputs or {}), request.inputs)
        response = await self._connection._unary(
            "RequestQuote", self._stub().RequestQuote, request, call_timeout
        )
        return response.quote

    async def receipt(
        self, execution_id: str, *, call_timeout: float | None = None
    ) -> quote_pb2.Receipt:
        """The signed receipt of an ended execution (yours, or any for an admin)."""
        response = await self._connection._unary(
            "GetReceipt",
            self._stub().GetReceipt,
            quote_pb2.GetReceiptRequest(execution_id=execution_id),
            call_timeout,
        )
        return response.receipt


class SyncQuotesClient:
    """`QuotesClient` for the blocking `Client` (each call runs on the client's loop thread)."""

    def __init__(
        self, run: Callable[[Coroutine[Any, Any, Any]], Any], quotes: QuotesClient
    ) -> None:
        self._run = run
        self._quotes = quotes

    def request(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        max_seconds: float = 0.0,
        max_tokens: int = 0,
        valid_seconds: float = 0.0,
        call_timeout: float | None = None,
    ) -> quote_pb2.Quote:
        coro = self._quotes.request(
            flow,
            inputs,
            max_seconds=max_seconds,
            max_tokens=max_tokens,
            valid_seconds=valid_seconds,
            call_timeout=call_timeout,
        )
        return self._run(coro)  # type: ignore[no-any-return]

    def receipt(self, execution_id: str, *, call_timeout: float | None = None) -> quote_pb2.Receipt:
        coro = self._quotes.receipt(execution_id, call_timeout=call_timeout)
        return self._run(coro)  # type: ignore[no-any-return]
