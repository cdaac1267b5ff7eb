"""Who may call what on the registry.

The table is keyed by full method name and fails closed (the guard interceptor refuses any
method missing from it). Reads are open to people (user, operator, admin), nodes and
gateways; writes to nodes only, and `check_node_writer` makes sure a node writes its own
entry alone. Flow
identities get nothing, not even health or reflection: flows have no business with the
registry. With `--insecure` there are no identities, so every caller is an anonymous admin
that also holds the node role (`INSECURE_ROLES`) and may write any entry (tests, local demos).
"""

from __future__ import annotations

from kodosumi.authz import (
    ADMIN,
    FLOW,
    GATEWAY,
    NODE,
    OPERATOR,
    USER,
    Principal,
    Rule,
    standard_rules,
)
from kodosumi.spiffe import IdentityKind
from kodosumi.v1 import registry_pb2
from registryd.errors import NodeIdentityMismatch

SERVICE = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
SERVICE_NAME = SERVICE.full_name

# Gateways read the network (which node offers a flow) like people do.
READERS = Rule.of(ADMIN, OPERATOR, USER, NODE, GATEWAY)
WRITERS = Rule.of(NODE)
INSECURE_ROLES = frozenset({ADMIN, NODE})

_WRITE_METHODS = frozenset({"RegisterNode", "Heartbeat", "DeregisterNode"})
_READ_METHODS = frozenset(
    {"GetNode", "ListNodes", "GetFlowOffer", "ListFlowOffers", "WatchRegistry"}
)


def method_name(method: str) -> str:
    return f"/{SERVICE_NAME}/{method}"


def registry_policy() -> dict[str, Rule]:
    """The authorization table of the registry daemon (RegistryService, health, reflection)."""
    policy = {method: Rule(rule.roles - {FLOW}) for method, rule in standard_rules().items()}
    policy |= {method_name(m): WRITERS for m in _WRITE_METHODS}
    policy |= {method_name(m): READERS for m in _READ_METHODS}
    return policy


def check_node_writer(principal: Principal, node_id: str) -> None:
    """A node writes only its own entry: the node id of its certificate must be `node_id`."""
    identity = principal.identity
    if identity is None:
        # --insecure: no identity to hold the caller to.
        return
    if identity.kind is not IdentityKind.NODE or identity.name != node_id:
        raise NodeIdentityMismatch(str(identity), node_id)
