"""The registry's authorization table against the service descriptor, and who holds which
right: clients read, nodes write (their own entry), flows get nothing."""

from __future__ import annotations

import pytest

from kodosumi.authz import (
    ADMIN,
    FLOW,
    GATEWAY,
    NODE,
    OPERATOR,
    REGISTRY,
    STANDARD_METHODS,
    USER,
)
from kodosumi.authz import authorize as check
from kodosumi.errors import PermissionDenied
from kodosumi.v1 import registry_pb2
from registryd.errors import NodeIdentityMismatch
from registryd.policy import INSECURE_ROLES, check_node_writer, registry_policy
from tests.registry.helpers import INSECURE, admin_principal, node_principal, user_principal

SERVICE = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
RPCS = {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}
WRITES = {f"/{SERVICE.full_name}/{m}" for m in ("RegisterNode", "Heartbeat", "DeregisterNode")}


def test_the_table_covers_exactly_the_served_methods() -> None:
    assert set(registry_policy()) == RPCS | set(STANDARD_METHODS)


def test_writes_are_for_nodes_only() -> None:
    policy = registry_policy()
    for method in WRITES:
        assert policy[method].roles == frozenset({NODE})


def test_reads_are_for_people_nodes_and_gateways() -> None:
    policy = registry_policy()
    for method in RPCS - WRITES:
        assert policy[method].roles == frozenset({ADMIN, OPERATOR, USER, NODE, GATEWAY})


def test_flows_have_no_access_at_all() -> None:
    assert all(FLOW not in rule.roles for rule in registry_policy().values())


def test_other_registries_have_no_registry_rights_yet() -> None:
    policy = registry_policy()
    assert all(REGISTRY not in policy[m].roles for m in RPCS)


def test_unknown_methods_are_refused() -> None:
    with pytest.raises(PermissionDenied):
        check(registry_policy(), "/kodosumi.v1.RegistryService/DropEverything", admin_principal())


def test_insecure_callers_can_read_and_write() -> None:
    policy = registry_policy()
    for method in RPCS:
        check(policy, method, INSECURE)
    assert INSECURE.roles == INSECURE_ROLES


def test_a_node_writes_its_own_entry_only() -> None:
    check_node_writer(node_principal("a"), "a")
    check_node_writer(INSECURE, "anything")
    for caller, node_id in ((node_principal("a"), "b"), (user_principal("a"), "a")):
        with pytest.raises(NodeIdentityMismatch):
            check_node_writer(caller, node_id)
