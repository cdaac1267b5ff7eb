"""The ledger's authorization table held against its service descriptor, the registry's
combined table, and the settlement errors against the error catalog."""

from __future__ import annotations

import inspect

from kodosumi import settlement
from kodosumi.authz import ADMIN, FLOW, GATEWAY, NODE, OPERATOR, STANDARD_METHODS, USER
from kodosumi.errors import CATALOG, KodosumiError
from kodosumi.v1 import auth_pb2, ledger_pb2, registry_pb2
from registryd.auth.policy import auth_policy
from registryd.ledger import ledger as ledger_domain
from registryd.ledger.policy import ledger_policy
from registryd.policy import registry_policy


def _methods(module: object, name: str) -> set[str]:
    service = module.DESCRIPTOR.services_by_name[name]  # type: ignore[attr-defined]
    return {f"/{service.full_name}/{m.name}" for m in service.methods}


LEDGER = _methods(ledger_pb2, "LedgerService")


def test_the_table_covers_exactly_the_ledger_service() -> None:
    assert set(ledger_policy()) == LEDGER
    combined = registry_policy() | auth_policy() | ledger_policy()
    assert set(combined) == (
        LEDGER
        | _methods(auth_pb2, "AuthService")
        | _methods(registry_pb2, "RegistryService")
        | set(STANDARD_METHODS)
    )


def test_who_holds_which_right() -> None:
    rules = {m.rsplit("/", 1)[1]: r.roles for m, r in ledger_policy().items()}
    for method in ("Reserve", "Settle", "Release", "GetHold"):
        assert rules[method] == {NODE, GATEWAY}
    for method in ("GrantCredit", "SetBudget", "DeleteBudget", "CancelHold"):
        assert rules[method] == {ADMIN}
    for method in ("GetBalance", "ListEntries", "ListBudgets", "ListHolds"):
        assert rules[method] == {ADMIN, OPERATOR, USER, NODE, GATEWAY}
    assert all(FLOW not in roles for roles in rules.values())


def test_every_settlement_error_is_in_the_catalog_with_its_status() -> None:
    classes = [
        c
        for module in (settlement, ledger_domain)
        for c in vars(module).values()
        if inspect.isclass(c) and issubclass(c, KodosumiError) and c.__module__ == module.__name__
    ]
    assert len(classes) == 10
    for cls in classes:
        reason = "BUDGET_EXHAUSTED" if cls is settlement.BudgetExhausted else cls.default_reason
        assert reason in CATALOG, cls
        assert CATALOG[reason].status == cls.status, cls
