"""`LedgerService` on a real registry over mTLS: the seller's path (reserve, settle, release,
replay), what people read, what admins set, and what a hostile node or user tries."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kodosumi.rpc.status import details_of
from kodosumi.v1 import ledger_pb2 as pb
from tests.auth.conftest import AuthRegistry
from tests.auth.test_hardening import audit_lines
from tests.ledger.conftest import Ledgers


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _quota_failure(error: grpc.aio.AioRpcError) -> error_details_pb2.QuotaFailure:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                    failure = error_details_pb2.QuotaFailure()
                    detail.Unpack(failure)
                    return failure
    raise AssertionError("no QuotaFailure")


async def _setup(ledgers: Ledgers, credit: str = "10", budget: str = "") -> None:
    admin = ledgers.admin()
    await admin.GrantCredit(pb.GrantCreditRequest(account="alice", amount=credit, currency="EUR"))
    if budget:
        await admin.SetBudget(
            pb.SetBudgetRequest(subject="alice", amount=budget, currency="EUR", period="month")
        )


async def test_a_run_paid_through_the_ledger(ledgers: Ledgers) -> None:
    await _setup(ledgers, credit="10", budget="5")
    node = ledgers.node("n1")
    held = await node.Reserve(
        pb.ReserveRequest(account="user/alice", amount="2.5", currency="EUR", key="exec-1")
    )
    assert held.hold.state == pb.HOLD_STATE_OPEN and held.hold.payee == "node/n1"
    alice = ledgers.user("alice")
    [balance] = (await alice.GetBalance(pb.GetBalanceRequest())).balances
    assert (balance.balance, balance.held, balance.available) == ("10", "2.5", "7.5")
    done = await node.Settle(
        pb.SettleRequest(key="exec-1", amount="0.75", currency="EUR", receipt_id="rcpt-1")
    )
    assert done.hold.state == pb.HOLD_STATE_SETTLED and not done.replayed
    assert (done.entry.debit, done.entry.credit, done.entry.amount) == (
        "user/alice",
        "node/n1",
        "0.75",
    )
    again = await node.Settle(
        pb.SettleRequest(key="exec-1", amount="0.75", currency="EUR", receipt_id="rcpt-1")
    )
    assert again.replayed and again.entry.entry_id == done.entry.entry_id
    [balance] = (await alice.GetBalance(pb.GetBalanceRequest())).balances
    assert (balance.balance, balance.held) == ("9.25", "0")
    node_balance = await node.GetBalance(pb.GetBalanceRequest())
    assert [b.balance for b in node_balance.balances] == ["0.75"]
    history = await alice.ListEntries(pb.ListEntriesRequest(page_size=1))
    assert [e.kind for e in history.entries] == ["settle"] and history.next_page_token
    rest = await alice.ListEntries(pb.ListEntriesRequest(page_token=history.next_page_token))
    assert [e.kind for e in rest.entries] == ["grant"] and not rest.next_page_token
    [budget] = (await alice.ListBudgets(pb.ListBudgetsRequest())).budgets
    assert (budget.limit, budget.used, budget.remaining) == ("5", "0.75", "4.25")
    # Release of an unused hold frees its funds; a release again changes nothing.
    await node.Reserve(pb.ReserveRequest(account="alice", amount="1", currency="EUR", key="e2"))
    released = await node.Release(pb.ReleaseRequest(key="e2"))
    assert released.hold.state == pb.HOLD_STATE_RELEASED
    assert (await node.Release(pb.ReleaseRequest(key="e2"))).hold.state == released.hold.state
    assert (await node.GetHold(pb.GetHoldRequest(key="exec-1"))).hold.receipt_id == "rcpt-1"


async def test_a_budget_refusal_names_the_budget(ledgers: Ledgers) -> None:
    await _setup(ledgers, credit="100", budget="1")
    error = await _refused(
        ledgers.node("n1").Reserve(
            pb.ReserveRequest(account="alice", amount="1.5", currency="EUR", key="k")
        )
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(error)[0] == "BUDGET_EXHAUSTED"
    [violation] = _quota_failure(error).violations
    assert violation.subject == "user/alice" and violation.quota_id == "budget_month_EUR"
    poor = await _refused(
        ledgers.node("n1").Reserve(
            pb.ReserveRequest(account="bob", amount="1", currency="EUR", key="k2")
        )
    )
    assert details_of(poor)[0] == "INSUFFICIENT_FUNDS"


async def test_fifty_concurrent_reservations_against_a_budget_for_ten(ledgers: Ledgers) -> None:
    await _setup(ledgers, credit="1000", budget="10")
    node = ledgers.node("n1")

    async def reserve(i: int) -> bool:
        try:
            await node.Reserve(
                pb.ReserveRequest(account="alice", amount="1", currency="EUR", key=f"run-{i}")
            )
        except grpc.aio.AioRpcError as e:
            assert details_of(e)[0] == "BUDGET_EXHAUSTED", e
            return False
        return True

    accepted = await asyncio.gather(*(reserve(i) for i in range(50)))
    assert sum(accepted) == 10
    [budget] = (await ledgers.user("alice").ListBudgets(pb.ListBudgetsRequest())).budgets
    assert (budget.used, budget.remaining) == ("10", "0")


async def test_a_user_sees_who_holds_their_funds_and_an_admin_cancels_a_hold(
    ledgers: Ledgers,
) -> None:
    await _setup(ledgers, credit="10")
    n1 = ledgers.node("n1")
    held = await n1.Reserve(
        pb.ReserveRequest(account="alice", amount="4", currency="EUR", key="stuck")
    )
    alice = ledgers.user("alice")
    [hold] = (await alice.ListHolds(pb.ListHoldsRequest())).holds
    assert (hold.payee, hold.amount, hold.state) == ("node/n1", "4", pb.HOLD_STATE_OPEN)
    for call in (
        alice.CancelHold(pb.CancelHoldRequest(hold_id=hold.hold_id)),
        alice.ListHolds(pb.ListHoldsRequest(account="bob")),
        n1.CancelHold(pb.CancelHoldRequest(hold_id=hold.hold_id)),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    admin = ledgers.admin()
    cancelled = await admin.CancelHold(pb.CancelHoldRequest(hold_id=held.hold.hold_id))
    assert cancelled.hold.state == pb.HOLD_STATE_RELEASED
    assert list((await alice.ListHolds(pb.ListHoldsRequest())).holds) == []
    closed = await alice.ListHolds(pb.ListHoldsRequest(include_closed=True))
    assert [h.state for h in closed.holds] == [pb.HOLD_STATE_RELEASED]
    # The seller can no longer take anything from it.
    error = await _refused(
        n1.Settle(pb.SettleRequest(key="stuck", amount="4", currency="EUR", receipt_id="late"))
    )
    assert details_of(error)[0] == "HOLD_CLOSED"
    missing = await _refused(admin.CancelHold(pb.CancelHoldRequest(hold_id="nope")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    # A seller lists the holds it holds (after a restart: which runs are still due).
    await n1.Reserve(pb.ReserveRequest(account="alice", amount="1", currency="EUR", key="next"))
    mine = await n1.ListHolds(pb.ListHoldsRequest(held_by_caller=True))
    assert [h.key for h in mine.holds] == ["next"]
    assert (
        list((await ledgers.node("n2").ListHolds(pb.ListHoldsRequest(held_by_caller=True))).holds)
        == []
    )
    bad = await _refused(n1.ListHolds(pb.ListHoldsRequest(account="alice", held_by_caller=True)))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- hostile callers ----------------------------------------------------------------------------


async def test_a_hostile_node_gets_no_more_than_it_reserved_for_itself(ledgers: Ledgers) -> None:
    await _setup(ledgers, credit="10")
    n1, n2 = ledgers.node("n1"), ledgers.node("n2")
    await n1.Reserve(pb.ReserveRequest(account="alice", amount="2", currency="EUR", key="k"))
    # Another node's hold: as if there were none, for settle and release alike.
    for call in (
        n2.Settle(pb.SettleRequest(key="k", amount="1", currency="EUR", receipt_id="steal")),
        n2.Release(pb.ReleaseRequest(key="k")),
        n2.GetHold(pb.GetHoldRequest(key="k")),
    ):
        error = await _refused(call)
        assert (error.code(), details_of(error)[0]) == (grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
    cases = [
        (
            pb.SettleRequest(key="k", amount="2.000000001", currency="EUR", receipt_id="r"),
            "SETTLE_EXCEEDS_HOLD",
        ),
        (
            pb.SettleRequest(key="k", amount="1", currency="USD", receipt_id="r"),
            "CURRENCY_MISMATCH",
        ),
        (
            pb.SettleRequest(key="k", amount="-1", currency="EUR", receipt_id="r"),
            "INVALID_ARGUMENT",
        ),
        (
            pb.SettleRequest(key="k", amount="1e30", currency="EUR", receipt_id="r"),
            "INVALID_ARGUMENT",
        ),
        (
            pb.SettleRequest(key="k", amount="NaN", currency="EUR", receipt_id="r"),
            "INVALID_ARGUMENT",
        ),
        (pb.SettleRequest(key="k", amount="1", currency="eur", receipt_id="r"), "INVALID_ARGUMENT"),
        (pb.SettleRequest(key="k", amount="1", currency="EUR", receipt_id=""), "INVALID_ARGUMENT"),
    ]
    for request, reason in cases:
        error = await _refused(n1.Settle(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert details_of(error)[0] == reason, request
    # Reserving its own or the system's account, or more than 10^18, is refused.
    for account, amount in (("node/n1", "1"), ("system/credit", "1"), ("alice", "1" + "0" * 18)):
        error = await _refused(
            n1.Reserve(pb.ReserveRequest(account=account, amount=amount, currency="EUR", key="x"))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, account
    await n1.Settle(pb.SettleRequest(key="k", amount="2", currency="EUR", receipt_id="r1"))
    error = await _refused(
        n1.Settle(pb.SettleRequest(key="k", amount="1", currency="EUR", receipt_id="r2"))
    )
    assert details_of(error)[0] == "HOLD_CLOSED"
    # The receipt replayed for another amount is refused, not posted.
    error = await _refused(
        n1.Settle(pb.SettleRequest(key="k", amount="1", currency="EUR", receipt_id="r1"))
    )
    assert details_of(error)[0] == "RECEIPT_USED"
    admin = ledgers.admin()
    alice = await admin.GetBalance(pb.GetBalanceRequest(account="alice"))
    assert [b.balance for b in alice.balances] == ["8"]
    # Nodes grant nothing, set no budgets and read no one else's account.
    for call in (
        n1.GrantCredit(pb.GrantCreditRequest(account="node/n1", amount="5", currency="EUR")),
        n1.SetBudget(
            pb.SetBudgetRequest(subject="alice", amount="0", currency="EUR", period="day")
        ),
        n1.GetBalance(pb.GetBalanceRequest(account="alice")),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_user_sets_no_budget_grants_nothing_and_reads_only_its_own(
    ledgers: Ledgers, auth_registry: AuthRegistry
) -> None:
    await _setup(ledgers, credit="10", budget="5")
    await ledgers.admin().SetBudget(
        pb.SetBudgetRequest(subject="group/ml", amount="3", currency="EUR", period="day")
    )
    await auth_registry.provider.create_user(_admin(auth_registry), "alice", (), ("ml",))
    alice = ledgers.user("alice")
    for call in (
        alice.SetBudget(
            pb.SetBudgetRequest(subject="alice", amount="1000", currency="EUR", period="month")
        ),
        alice.DeleteBudget(pb.DeleteBudgetRequest(subject="alice", currency="EUR", period="month")),
        alice.GrantCredit(pb.GrantCreditRequest(account="alice", amount="5", currency="EUR")),
        alice.Reserve(pb.ReserveRequest(account="bob", amount="1", currency="EUR", key="k")),
        alice.Settle(pb.SettleRequest(key="k", amount="1", currency="EUR", receipt_id="r")),
        alice.GetBalance(pb.GetBalanceRequest(account="bob")),
        alice.ListEntries(pb.ListEntriesRequest(account="system/credit")),
        alice.ListBudgets(pb.ListBudgetsRequest(subject="user/bob")),
        alice.ListBudgets(pb.ListBudgetsRequest(subject="*")),
        ledgers.flow("n1", "hello").GetBalance(pb.GetBalanceRequest()),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    # Her own budgets: hers and her group's.
    budgets = (await alice.ListBudgets(pb.ListBudgetsRequest())).budgets
    assert [(b.subject, b.period) for b in budgets] == [
        ("group/ml", "day"),
        ("user/alice", "month"),
    ]
    mine = await alice.ListBudgets(pb.ListBudgetsRequest(subject="group/ml"))
    assert [b.limit for b in mine.budgets] == ["3"]


def _admin(registry: AuthRegistry) -> Any:
    from kodosumi.authz import Principal
    from kodosumi.spiffe import SpiffeId

    return Principal(
        SpiffeId.user(registry.pki.ca.trust_domain, "root"), frozenset({"admin", "user"})
    )


async def test_admin_requests_are_checked_field_by_field(
    ledgers: Ledgers, auth_registry: AuthRegistry
) -> None:
    admin = ledgers.admin()
    bad = [
        pb.GrantCreditRequest(account="alice", amount="0", currency="EUR"),
        pb.GrantCreditRequest(account="alice", amount="-5", currency="EUR"),
        pb.GrantCreditRequest(account="alice", amount="", currency="EUR"),
        pb.GrantCreditRequest(account="alice", amount="1", currency=""),
        pb.GrantCreditRequest(account="bank/x", amount="1", currency="EUR"),
        pb.GrantCreditRequest(account="system/credit", amount="1", currency="EUR"),
        pb.GrantCreditRequest(account="alice", amount="0.0000000001", currency="EUR"),
    ]
    for request in bad:
        error = await _refused(admin.GrantCredit(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    error = await _refused(
        admin.SetBudget(
            pb.SetBudgetRequest(subject="alice", amount="1", currency="EUR", period="week")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "period" in (error.details() or "")
    first = await admin.GrantCredit(
        pb.GrantCreditRequest(account="alice", amount="1", currency="EUR", key="grant-1")
    )
    again = await admin.GrantCredit(
        pb.GrantCreditRequest(account="alice", amount="1", currency="EUR", key="grant-1")
    )
    assert again.replayed and again.entry.entry_id == first.entry.entry_id
    # Grants are admin actions: each one is in the registry's audit log, with who made it.
    granted = [
        line
        for line in audit_lines(auth_registry.daemon.config.state_dir)
        if line["event"] == "admin" and line["method"].endswith("/GrantCredit")
    ]
    assert len(granted) == 2 and granted[0]["who"].endswith("/user/root")
