"""Who may call what on the ledger (fail closed, like every table).

- Nodes: reserve, settle, release and look up their own holds (the servicer makes the caller
  the holder and payee; the domain lets it touch no other seller's hold).
- Every enrolled person and node: its own balance, history and budgets (admins: anyone's).
- Admins: credit grants and budgets.
- Flows: nothing.
"""

from __future__ import annotations

from kodosumi.authz import ADMIN, NODE, OPERATOR, USER, Rule
from kodosumi.v1 import ledger_pb2

LEDGER_SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"]

SELLERS = Rule.of(NODE)
READERS = Rule.of(ADMIN, OPERATOR, USER, NODE)
ADMINS = Rule.of(ADMIN)

_RULES = {
    "Reserve": SELLERS,
    "Settle": SELLERS,
    "Release": SELLERS,
    "GetHold": SELLERS,
    "GetBalance": READERS,
    "ListEntries": READERS,
    "ListBudgets": READERS,
    "GrantCredit": ADMINS,
    "SetBudget": ADMINS,
    "DeleteBudget": ADMINS,
}


def ledger_policy() -> dict[str, Rule]:
    """The LedgerService part of the registry's table."""
    return {f"/{LEDGER_SERVICE.full_name}/{name}": rule for name, rule in _RULES.items()}
