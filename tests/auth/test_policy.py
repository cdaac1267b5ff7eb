"""The auth provider's tables held against the service descriptors, and the registry's
combined table: every served method is listed, nothing else, and who holds which right."""

from __future__ import annotations

from kodosumi.authz import (
    ADMIN,
    FLOW,
    GATEWAY,
    NODE,
    OPERATOR,
    STANDARD_METHODS,
    USER,
    Principal,
)
from kodosumi.authz import authorize as check
from kodosumi.errors import PermissionDenied
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import auth_pb2, registry_pb2
from registryd.auth.policy import ENROLLEE, auth_policy, enrollment_policy
from registryd.policy import registry_policy


def _methods(service: object) -> set[str]:
    return {f"/{service.full_name}/{m.name}" for m in service.methods}  # type: ignore[attr-defined]


AUTH = _methods(auth_pb2.DESCRIPTOR.services_by_name["AuthService"])
ENROLL = _methods(auth_pb2.DESCRIPTOR.services_by_name["EnrollmentService"])
REGISTRY = _methods(registry_pb2.DESCRIPTOR.services_by_name["RegistryService"])
ADMIN_ONLY = {
    f"/kodosumi.v1.AuthService/{m}"
    for m in (
        "CreateUser",
        "UpdateUser",
        "DeleteUser",
        "ListUsers",
        "CreateGroup",
        "DeleteGroup",
        "ListGroups",
        "CreateEnrollmentToken",
        "ListCertificates",
        "Revoke",
        "ListRevocations",
        "IssueBadge",
    )
}


def test_the_auth_table_covers_exactly_the_auth_service() -> None:
    assert set(auth_policy()) == AUTH


def test_the_enrollment_port_serves_enroll_alone() -> None:
    assert set(enrollment_policy()) == ENROLL
    assert all(rule.roles == {ENROLLEE} for rule in enrollment_policy().values())


def test_the_registry_daemon_table_covers_everything_it_serves() -> None:
    combined = registry_policy() | auth_policy()
    assert set(combined) == REGISTRY | AUTH | set(STANDARD_METHODS)


def test_admin_calls_are_for_admins_only() -> None:
    policy = auth_policy()
    for method in ADMIN_ONLY:
        assert policy[method].roles == {ADMIN}, method
    operator = Principal(SpiffeId.user("d", "olga"), frozenset({USER, OPERATOR}))
    for method in ADMIN_ONLY:
        try:
            check(policy, method, operator)
        except PermissionDenied:
            continue
        raise AssertionError(f"an operator may call {method}")


def test_flows_get_nothing_from_the_auth_provider() -> None:
    assert all(FLOW not in rule.roles for rule in auth_policy().values())


def test_machine_rights() -> None:
    policy = auth_policy()
    node_only = {
        "/kodosumi.v1.AuthService/IssueFlowCertificate",
    }
    for method in node_only:
        assert policy[method].roles == {NODE}
    for method in ("GetGrants", "WatchAuthState"):
        assert policy[f"/kodosumi.v1.AuthService/{method}"].roles == {NODE, ADMIN}
    # Gateways (kodogate) renew their certificates and read badges like any enrolled party.
    for method in ("RenewCertificate", "WhoAmI", "ListBadges"):
        roles = policy[f"/kodosumi.v1.AuthService/{method}"].roles
        assert roles == {ADMIN, OPERATOR, USER, NODE, GATEWAY}
