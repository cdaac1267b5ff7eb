"""Who may call what: principals, roles and per-RPC authorization tables.

A table maps the full RPC method name (`/kodosumi.v1.FlowService/LaunchExecution`) to the
roles allowed to call it. Methods missing from a table are refused: the tables fail closed,
and a test holds each table against the service descriptors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kodosumi.errors import PermissionDenied
from kodosumi.spiffe import IdentityKind, SpiffeId

ADMIN = "admin"
OPERATOR = "operator"
USER = "user"
NODE = "node"
FLOW = "flow"
REGISTRY = "registry"
# A marketplace gateway (`kodogate`): launches, watches and answers the executions it sells,
# its own only, like a user; reads the registry; nothing else.
GATEWAY = "gateway"

HUMAN_ROLES = frozenset({ADMIN, OPERATOR, USER})
PRIVILEGED_ROLES = frozenset({ADMIN, OPERATOR})
ALL_ROLES = frozenset({ADMIN, OPERATOR, USER, NODE, FLOW, REGISTRY, GATEWAY})


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one RPC. `identity` is None only on an --insecure server.

    `groups` are the user groups the auth provider knows the caller in (flow allow-lists).
    """

    identity: SpiffeId | None
    roles: frozenset[str]
    groups: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        return str(self.identity) if self.identity else "insecure:anonymous"

    @property
    def privileged(self) -> bool:
        """Operators and admins see and act on everybody's executions."""
        return bool(self.roles & PRIVILEGED_ROLES)

    def may_act_on(self, owner: str) -> bool:
        return self.privileged or owner == self.id


@dataclass(frozen=True, slots=True)
class Rule:
    """Any one of `roles` may call the method."""

    roles: frozenset[str]

    @classmethod
    def of(cls, *roles: str) -> Rule:
        return cls(frozenset(roles))


Policy = Mapping[str, Rule]


def authorize(policy: Policy, method: str, principal: Principal) -> None:
    rule = policy.get(method)
    if rule is None:
        raise PermissionDenied(f"{method} is not open to anyone", reason="METHOD_NOT_ALLOWED")
    if not principal.roles & rule.roles:
        raise PermissionDenied(
            f"{principal.id} may not call {method} (needs one of: {', '.join(sorted(rule.roles))})"
        )


class RoleResolver(Protocol):
    async def roles_of(self, identity: SpiffeId) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Grants:
    """What the auth provider grants an identity: roles (authorization tables) and groups."""

    roles: frozenset[str]
    groups: frozenset[str] = frozenset()


@runtime_checkable
class GrantResolver(Protocol):
    """A RoleResolver that also knows groups (the auth provider's resolvers are)."""

    async def roles_of(self, identity: SpiffeId) -> frozenset[str]: ...

    async def grants_of(self, identity: SpiffeId) -> Grants: ...


async def principal_of(resolver: RoleResolver | GrantResolver, identity: SpiffeId) -> Principal:
    """The principal `identity` would be on a call (its roles, and groups where the resolver
    knows them), without a call: a quota charged to someone other than the caller."""
    grants_of = getattr(resolver, "grants_of", None)
    grants: Grants = (
        await grants_of(identity)
        if grants_of is not None
        else Grants(await resolver.roles_of(identity))
    )
    return Principal(identity, grants.roles, grants.groups)


def default_roles(identity: SpiffeId) -> frozenset[str]:
    """The roles an identity holds by its kind alone: machines their kind, people `user`."""
    return _KIND_ROLES.get(identity.kind, frozenset({USER}))


# The principal an identity (a SPIFFE id) would be on a call: whose quotas something is
# charged to when that is not the caller (`Authenticator.principal_of`).
Principals = Callable[[str], Awaitable["Principal"]]


async def default_principal(identity: str) -> Principal:
    """An identity's roles by its kind alone (a node without an auth provider's grants)."""
    spiffe = SpiffeId.parse(identity)
    return Principal(spiffe, default_roles(spiffe))


_KIND_ROLES = {
    IdentityKind.NODE: frozenset({NODE}),
    IdentityKind.FLOW: frozenset({FLOW}),
    IdentityKind.REGISTRY: frozenset({REGISTRY}),
    IdentityKind.GATEWAY: frozenset({GATEWAY}),
}


class StaticRoleResolver:
    """Roles from configuration: machine identities by their kind, users by name lists."""

    def __init__(self, admins: Iterable[str] = (), operators: Iterable[str] = ()) -> None:
        self._admins = frozenset(admins)
        self._operators = frozenset(operators)

    async def roles_of(self, identity: SpiffeId) -> frozenset[str]:
        if identity.kind in _KIND_ROLES:
            return _KIND_ROLES[identity.kind]
        roles = {USER}
        text = str(identity)
        if text in self._admins or identity.name in self._admins:
            roles.add(ADMIN)
        if text in self._operators or identity.name in self._operators:
            roles.add(OPERATOR)
        return frozenset(roles)


# Methods of the standard services every daemon serves; any authenticated caller may use them.
STANDARD_METHODS = (
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)


def standard_rules() -> dict[str, Rule]:
    return {method: Rule(ALL_ROLES) for method in STANDARD_METHODS}
