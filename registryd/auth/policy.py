"""Who may call what on the auth provider (fail closed, like every table).

- Any enrolled person, node or gateway: renew its own certificate, ask who it is, read badges.
- Nodes: certificates for the flows they host, the grants of their callers, the auth state.
- Admins: everything that changes users, groups, tokens, revocations and badges.
- Flows: nothing (they are renewed by the node that hosts them).
- The enrollment port serves `Enroll` alone, to callers without a certificate (`enrollee`).
"""

from __future__ import annotations

from kodosumi.authz import ADMIN, GATEWAY, NODE, OPERATOR, USER, Rule
from kodosumi.v1 import auth_pb2

AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
ENROLLMENT_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["EnrollmentService"]

# The only role on the enrollment port: a caller that has no certificate yet.
ENROLLEE = "enrollee"

ENROLLED = Rule.of(ADMIN, OPERATOR, USER, NODE, GATEWAY)
NODES = Rule.of(NODE)
NODES_AND_ADMINS = Rule.of(NODE, ADMIN)
ADMINS = Rule.of(ADMIN)

_RULES = {
    "RenewCertificate": ENROLLED,
    "WhoAmI": ENROLLED,
    "ListBadges": ENROLLED,
    "IssueFlowCertificate": NODES,
    "GetGrants": NODES_AND_ADMINS,
    "WatchAuthState": NODES_AND_ADMINS,
    "CreateUser": ADMINS,
    "UpdateUser": ADMINS,
    "DeleteUser": ADMINS,
    "ListUsers": ADMINS,
    "CreateGroup": ADMINS,
    "DeleteGroup": ADMINS,
    "ListGroups": ADMINS,
    "CreateEnrollmentToken": ADMINS,
    "ListCertificates": ADMINS,
    "ApproveHostNames": ADMINS,
    "Revoke": ADMINS,
    "ListRevocations": ADMINS,
    "IssueBadge": ADMINS,
}


def auth_policy() -> dict[str, Rule]:
    """The AuthService part of the registry's table (merged with `registry_policy()`)."""
    return {f"/{AUTH_SERVICE.full_name}/{name}": rule for name, rule in _RULES.items()}


def enrollment_policy() -> dict[str, Rule]:
    """The whole table of the enrollment port."""
    return {f"/{ENROLLMENT_SERVICE.full_name}/Enroll": Rule.of(ENROLLEE)}
