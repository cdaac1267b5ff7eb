"""Who may call what on the ledger (fail closed, like every table).

- Sellers (nodes, marketplace gateways): reserve, settle, release and look up their own holds
  (the servicer makes the caller the holder and payee; the domain lets it touch no other
  seller's hold).
- Every enrolled person, node and gateway: its own balance, history, holds and budgets
  (admins: anyone's).
- Admins: credit grants, budgets, and cancelling any hold.
- Flows: nothing.
"""

from __future__ import annotations

from kodosumi.authz import ADMIN, GATEWAY, NODE, OPERATOR, USER, Rule
from kodosumi.v1 import ledger_pb2

LEDGER_SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"]

SELLERS = Rule.of(NODE, GATEWAY)
READERS = Rule.of(ADMIN, OPERATOR, USER, NODE, GATEWAY)
ADMINS = Rule.of(ADMIN)

_RULES = {
    "Reserve": SELLERS,
    "Settle": SELLERS,
    "Release": SELLERS,
    "GetHold": SELLERS,
    "GetBalance": READERS,
    "ListEntries": READERS,
    "ListBudgets": READERS,
    "ListHolds": READERS,
    "GrantCredit": ADMINS,
    "SetBudget": ADMINS,
    "DeleteBudget": ADMINS,
    "CancelHold": ADMINS,
}


def ledger_policy() -> dict[str, Rule]:
    """The LedgerService part of the registry's table."""
    return {f"/{LEDGER_SERVICE.full_name}/{name}": rule for name, rule in _RULES.items()}
