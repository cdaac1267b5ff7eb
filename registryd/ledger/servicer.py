"""The gRPC face of the ledger: decode, decide which account the caller acts as, call the
domain, encode. The guard interceptor has checked `policy.py` before these methods run.

A seller's holder and payee account is always its own identity's (`node/<id>`): nothing in a
request names them, so a node cannot settle another node's hold or pay anyone but itself.
People and nodes read their own account; admins read any.
"""

from __future__ import annotations

from typing import Any

import grpc

from kodosumi.authz import ADMIN, Principal
from kodosumi.errors import InvalidArgument, PermissionDenied
from kodosumi.rpc.guard import current_principal
from kodosumi.settlement import (
    BUDGET_KINDS,
    check_currency,
    check_key,
    parse_account,
    parse_amount,
)
from kodosumi.v1 import ledger_pb2 as pb
from kodosumi.v1 import ledger_pb2_grpc
from registryd.auth.codec import seconds
from registryd.ledger import codec
from registryd.ledger.ledger import Ledger

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_MEMO_CHARS = 500


def own_account(principal: Principal) -> str:
    """The caller's account: `<kind>/<name>` of its identity (users, nodes)."""
    identity = principal.identity
    if identity is None or identity.kind.value not in ("user", "node", "gateway"):
        raise PermissionDenied(f"{principal.id} holds no account", reason="PERMISSION_DENIED")
    return f"{identity.kind.value}/{identity.name}"


def _readable(principal: Principal, requested: str) -> str:
    """The account a read names: the caller's own (empty), or any for admins."""
    if not requested:
        return own_account(principal)
    account = parse_account(requested)
    if ADMIN not in principal.roles and account != own_account(principal):
        raise PermissionDenied(
            f"{principal.id} reads its own account only", reason="PERMISSION_DENIED"
        )
    return account


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # -- sellers --------------------------------------------------------------------------------

    async def Reserve(self, request: pb.ReserveRequest, context: Context) -> pb.ReserveResponse:
        holder = own_account(current_principal())
        hold = await self.ledger.reserve(
            holder,
            parse_account(request.account),
            parse_amount(request.amount, "amount", positive=True),
            check_currency(request.currency),
            check_key(request.key, "key"),
            seconds(request.ttl) or 0.0,
        )
        return pb.ReserveResponse(hold=codec.hold_to_pb(hold))

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.SettleResponse:
        holder = own_account(current_principal())
        done = await self.ledger.settle(
            holder,
            check_key(request.key, "key"),
            parse_amount(request.amount, "amount"),
            check_currency(request.currency),
            check_key(request.receipt_id, "receipt_id"),
        )
        response = pb.SettleResponse(hold=codec.hold_to_pb(done.hold), replayed=done.replayed)
        if done.entry is not None:
            response.entry.CopyFrom(codec.entry_to_pb(done.entry))
        return response

    async def Release(self, request: pb.ReleaseRequest, context: Context) -> pb.ReleaseResponse:
        holder = own_account(current_principal())
        hold = await self.ledger.release(holder, check_key(request.key, "key"))
        return pb.ReleaseResponse(hold=codec.hold_to_pb(hold))

    async def GetHold(self, request: pb.GetHoldRequest, context: Context) -> pb.GetHoldResponse:
        holder = own_account(current_principal())
        hold = await self.ledger.get_hold(holder, check_key(request.key, "key"))
        return pb.GetHoldResponse(hold=codec.hold_to_pb(hold))

    # -- readers --------------------------------------------------------------------------------

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        account = _readable(current_principal(), request.account)
        balances = await self.ledger.balances(account)
        return pb.GetBalanceResponse(
            account=account, balances=[codec.balance_to_pb(b) for b in balances]
        )

    async def ListEntries(
        self, request: pb.ListEntriesRequest, context: Context
    ) -> pb.ListEntriesResponse:
        account = _readable(current_principal(), request.account)
        if request.currency:
            check_currency(request.currency)
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument.field(
                "page_size", f"from 0 (default {DEFAULT_PAGE}) to {MAX_PAGE}"
            )
        before = 0
        if request.page_token:
            if not request.page_token.isdigit() or len(request.page_token) > 19:
                raise InvalidArgument.field("page_token", "a token from the previous page")
            before = int(request.page_token)
        size = request.page_size or DEFAULT_PAGE
        entries = await self.ledger.history(account, request.currency, before, size + 1)
        more = len(entries) > size
        entries = entries[:size]
        return pb.ListEntriesResponse(
            entries=[codec.entry_to_pb(e) for e in entries],
            next_page_token=str(entries[-1].entry_id) if more and entries else "",
        )

    async def ListBudgets(
        self, request: pb.ListBudgetsRequest, context: Context
    ) -> pb.ListBudgetsResponse:
        principal = current_principal()
        admin = ADMIN in principal.roles
        subjects: tuple[str, ...] | None
        if request.subject == "*" and admin:
            subjects = None
        elif request.subject and request.subject != "*":
            subject = parse_account(request.subject, "subject", BUDGET_KINDS)
            mine = await self.ledger.subjects_of(own_account(principal)) if not admin else ()
            if not admin and subject not in mine:
                raise PermissionDenied(
                    f"{principal.id} reads its own budgets only", reason="PERMISSION_DENIED"
                )
            subjects = (subject,)
        elif request.subject == "*":
            raise PermissionDenied("only admins list every budget", reason="PERMISSION_DENIED")
        else:
            subjects = await self.ledger.subjects_of(own_account(principal))
        uses = await self.ledger.budgets_of(subjects)
        return pb.ListBudgetsResponse(budgets=[codec.budget_to_pb(u) for u in uses])

    async def ListHolds(
        self, request: pb.ListHoldsRequest, context: Context
    ) -> pb.ListHoldsResponse:
        if request.held_by_caller and request.account:
            raise InvalidArgument.field("account", "empty with held_by_caller")
        account = _readable(current_principal(), request.account)
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument.field(
                "page_size", f"from 0 (default {DEFAULT_PAGE}) to {MAX_PAGE}"
            )
        holds = await self.ledger.holds_of(
            account,
            not request.include_closed,
            request.page_size or DEFAULT_PAGE,
            by_holder=request.held_by_caller,
        )
        return pb.ListHoldsResponse(holds=[codec.hold_to_pb(h) for h in holds])

    # -- admins ---------------------------------------------------------------------------------

    async def CancelHold(
        self, request: pb.CancelHoldRequest, context: Context
    ) -> pb.CancelHoldResponse:
        hold = await self.ledger.cancel(check_key(request.hold_id, "hold_id"))
        return pb.CancelHoldResponse(hold=codec.hold_to_pb(hold))

    async def GrantCredit(
        self, request: pb.GrantCreditRequest, context: Context
    ) -> pb.GrantCreditResponse:
        if len(request.memo) > _MEMO_CHARS:
            raise InvalidArgument.field("memo", f"at most {_MEMO_CHARS} characters")
        entry, replayed = await self.ledger.grant(
            current_principal().id,
            parse_account(request.account),
            parse_amount(request.amount, "amount", positive=True),
            check_currency(request.currency),
            request.memo,
            check_key(request.key, "key") if request.key else "",
        )
        return pb.GrantCreditResponse(entry=codec.entry_to_pb(entry), replayed=replayed)

    async def SetBudget(
        self, request: pb.SetBudgetRequest, context: Context
    ) -> pb.SetBudgetResponse:
        use = await self.ledger.set_budget(
            current_principal().id,
            parse_account(request.subject, "subject", BUDGET_KINDS),
            check_currency(request.currency),
            request.period,
            parse_amount(request.amount, "amount"),
        )
        return pb.SetBudgetResponse(budget=codec.budget_to_pb(use))

    async def DeleteBudget(
        self, request: pb.DeleteBudgetRequest, context: Context
    ) -> pb.DeleteBudgetResponse:
        deleted = await self.ledger.delete_budget(
            parse_account(request.subject, "subject", BUDGET_KINDS),
            check_currency(request.currency),
            request.period,
        )
        return pb.DeleteBudgetResponse(deleted=deleted)
