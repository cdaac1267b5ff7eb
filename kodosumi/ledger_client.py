"""A `Settlement` over gRPC: the registry's `LedgerService`, as a seller (a node, a gateway)
calls it with its own identity. The caller is the holder and the payee of its holds; nothing
in a request names them.

Failed calls become catalog errors: the settlement errors by their reason (a node passes a
`BudgetExhausted` on to its client as it came, with its `QuotaFailure`), an unreachable
registry `Unavailable` with reason `LEDGER_UNAVAILABLE`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from kodosumi.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    KodosumiError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from kodosumi.rpc.channel import open_channel
from kodosumi.rpc.status import details_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.settlement import (
    EXPIRED,
    OPEN,
    RELEASED,
    SETTLED,
    Balance,
    BudgetExhausted,
    Entry,
    Hold,
    Settled,
    to_units,
    units_text,
)
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import ledger_pb2 as pb
from kodosumi.v1 import ledger_pb2_grpc

_STATES = {
    pb.HOLD_STATE_OPEN: OPEN,
    pb.HOLD_STATE_SETTLED: SETTLED,
    pb.HOLD_STATE_RELEASED: RELEASED,
    pb.HOLD_STATE_EXPIRED: EXPIRED,
}
_BY_CODE: dict[grpc.StatusCode, type[KodosumiError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def _units(text: str) -> int:
    return to_units(Decimal(text)) if text else 0


def _seconds(ts: Any) -> float:
    return float(ts.seconds + ts.nanos / 1e9)


def hold_from_pb(hold: pb.Hold) -> Hold:
    return Hold(
        hold_id=hold.hold_id,
        holder=hold.payee,
        key=hold.key,
        account=hold.account,
        payee=hold.payee,
        currency=hold.currency,
        units=_units(hold.amount),
        created_at=_seconds(hold.create_time),
        expires_at=_seconds(hold.expire_time),
        state=_STATES.get(hold.state, OPEN),
        settled_units=_units(hold.settled_amount),
        receipt_id=hold.receipt_id,
    )


def entry_from_pb(entry: pb.LedgerEntry) -> Entry:
    return Entry(
        entry_id=entry.entry_id,
        kind=entry.kind,
        debit=entry.debit,
        credit=entry.credit,
        currency=entry.currency,
        units=_units(entry.amount),
        at=_seconds(entry.time),
        by=entry.by,
        memo=entry.memo,
        hold_id=entry.hold_id,
        receipt_id=entry.receipt_id,
    )


def _error_metadata(call: grpc.aio.AioRpcError) -> dict[str, str]:
    for key, value in call.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return dict(info.metadata)
    return {}


def ledger_error(call: grpc.aio.AioRpcError) -> KodosumiError:
    """The catalog error a failed ledger call stands for."""
    code = call.code()
    details = call.details() or ""
    reason, violations = details_of(call)
    if reason == "BUDGET_EXHAUSTED":
        m = _error_metadata(call)
        try:
            return BudgetExhausted(
                m["subject"],
                m["period"],
                m["currency"],
                _units(m["limit"]),
                _units(m["remaining"]),
            )
        except (KeyError, ArithmeticError, ValueError):
            return ResourceExhausted(details, reason=reason)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(details, violations=violations, reason=reason or None)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Unavailable(f"the ledger is unreachable: {details}", reason="LEDGER_UNAVAILABLE")
    if code == grpc.StatusCode.UNIMPLEMENTED:  # a registry without `[ledger]`
        return Unavailable(f"the registry keeps no ledger: {details}", reason="LEDGER_UNAVAILABLE")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unavailable(f"the ledger refused this caller: {details}", reason="PEER_REFUSED")
    cls = _BY_CODE.get(code, KodosumiError)
    return cls(details or code.name, reason=reason or None)


@dataclass(frozen=True, slots=True)
class LedgerTarget:
    address: str
    tls: TlsMaterial | None
    registry_id: str = ""
    call_timeout: float = 5.0


class LedgerClient:
    """`kodosumi.settlement.Settlement` over the registry's `LedgerService`."""

    def __init__(self, target: LedgerTarget) -> None:
        self.target = target
        self._channel = open_channel(
            target.address, target.tls, expect=ServerExpectation.registry(target.registry_id)
        )
        self._stub: Any = ledger_pb2_grpc.LedgerServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, method: str, request: Any) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self._stub, method)
        try:
            return await rpc(request, timeout=self.target.call_timeout)
        except grpc.aio.AioRpcError as e:
            raise ledger_error(e) from None

    async def reserve(
        self, account: str, amount: Decimal, currency: str, key: str, ttl_seconds: float = 0.0
    ) -> Hold:
        request = pb.ReserveRequest(
            account=account, amount=format(amount, "f"), currency=currency, key=key
        )
        if ttl_seconds > 0:
            ttl = duration_pb2.Duration()
            ttl.FromNanoseconds(round(ttl_seconds * 1e9))
            request.ttl.CopyFrom(ttl)
        response = await self.call("Reserve", request)
        return hold_from_pb(response.hold)

    async def settle(self, key: str, amount: Decimal, currency: str, receipt_id: str) -> Settled:
        response = await self.call(
            "Settle",
            pb.SettleRequest(
                key=key, amount=format(amount, "f"), currency=currency, receipt_id=receipt_id
            ),
        )
        entry = entry_from_pb(response.entry) if response.HasField("entry") else None
        return Settled(hold_from_pb(response.hold), entry, response.replayed)

    async def release(self, key: str) -> Hold:
        response = await self.call("Release", pb.ReleaseRequest(key=key))
        return hold_from_pb(response.hold)

    async def get_hold(self, key: str) -> Hold:
        response = await self.call("GetHold", pb.GetHoldRequest(key=key))
        return hold_from_pb(response.hold)

    async def open_holds(self) -> list[Hold]:
        response = await self.call(
            "ListHolds", pb.ListHoldsRequest(held_by_caller=True, page_size=1000)
        )
        return [hold_from_pb(h) for h in response.holds]

    async def balances(self, account: str = "") -> list[Balance]:
        response = await self.call("GetBalance", pb.GetBalanceRequest(account=account))
        return [
            Balance(b.account, b.currency, _units(b.balance), _units(b.held))
            for b in response.balances
        ]


__all__ = ["LedgerClient", "LedgerTarget", "hold_from_pb", "ledger_error", "units_text"]
