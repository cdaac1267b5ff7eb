"""Who a caller is on this node: grants from the auth provider, cached briefly, and the
per-flow allow-list of the catalog.

`ProviderGrants` is the node's `GrantResolver` when it has an auth provider. Machine
identities hold the role of their kind without asking. People are looked up and cached for
`ttl` seconds, so a role change holds here within that bound even if no push arrives; the
auth state follower (`kodosumid/auth/sync.py`) drops the whole cache at every change it
hears of, which makes changes hold at once. While the provider cannot be reached, a cached
answer is used up to `max_stale` seconds, after that the least privilege: `user`, no groups.
Roles the node's own configuration names (`[node] admins`, `operators`) are added on top.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kodosumi.authz import USER, Grants, Principal, StaticRoleResolver, default_roles
from kodosumi.errors import KodosumiError, PermissionDenied
from kodosumi.spiffe import IdentityKind, SpiffeId
from kodosumid.config import FlowEntry

log = logging.getLogger(__name__)

FetchGrants = Callable[[SpiffeId], Awaitable[Grants]]


@dataclass(slots=True)
class _Entry:
    grants: Grants
    at: float


class ProviderGrants:
    def __init__(
        self,
        fetch: FetchGrants,
        *,
        ttl: float = 5.0,
        max_stale: float = 300.0,
        local: StaticRoleResolver | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self.max_stale = max_stale
        self.local = local or StaticRoleResolver()
        self.now = now
        self.lookups = 0
        self._cache: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[Grants]] = {}

    def invalidate(self) -> None:
        """Forget every cached answer (the auth provider announced a change)."""
        self._cache.clear()

    async def roles_of(self, identity: SpiffeId) -> frozenset[str]:
        return (await self.grants_of(identity)).roles

    async def grants_of(self, identity: SpiffeId) -> Grants:
        if identity.kind is not IdentityKind.USER:
            return Grants(default_roles(identity))
        grants = await self._provider_grants(identity)
        local = await self.local.roles_of(identity)
        return Grants(grants.roles | local, grants.groups)

    async def _provider_grants(self, identity: SpiffeId) -> Grants:
        key = str(identity)
        entry = self._cache.get(key)
        if entry is not None and self.now() - entry.at < self.ttl:
            return entry.grants
        pending = self._pending.get(key)
        if pending is not None:
            # One lookup per identity at a time; concurrent calls share its answer.
            return await asyncio.shield(pending)
        future: asyncio.Future[Grants] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            grants = await self._lookup(identity, entry)
            future.set_result(grants)
            return grants
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._pending[key]

    async def _lookup(self, identity: SpiffeId, entry: _Entry | None) -> Grants:
        self.lookups += 1
        try:
            grants = await self.fetch(identity)
        except (KodosumiError, OSError) as e:
            if entry is not None and self.now() - entry.at < self.max_stale:
                log.warning("auth provider unreachable (%s); using cached grants", e)
                return entry.grants
            log.warning("auth provider unreachable (%s); %s gets the user role only", e, identity)
            return Grants(frozenset({USER}))
        self._cache[str(identity)] = _Entry(grants, self.now())
        return grants


def check_flow_access(principal: Principal, flow: FlowEntry) -> None:
    """Only the groups a flow's allow-list names may launch it (no list: everyone).

    Operators and admins launch everything. Machine identities carry no groups, so they do
    not pass a list: a peer that forwards a user's launch calls with its own node identity,
    and this node cannot tell which user it acts for — a restricted flow is launched on its
    own node, by its users, never by forwarding (fail closed).
    """
    if not flow.groups or principal.privileged:
        return
    if principal.groups & set(flow.groups):
        return
    raise PermissionDenied(
        f"{principal.id} may not launch flow {flow.name!r} (open to groups: "
        f"{', '.join(flow.groups)})",
        reason="FLOW_NOT_ALLOWED",
        metadata={"flow": flow.name},
    )
