"""Badges the auth provider issues about flows and nodes, from what the registry knows.

- `certified-flow`: the flow as a node registered it (version, entrypoint, a digest of its
  registered spec) was certified by an admin.
- `service-level`: the node's availability over a window, computed from the registry's change
  log (time ONLINE / window), with the node's heartbeat interval.

The signed token is a `kodosumi.badges` JWS; anyone with the CA certificate verifies it
offline. Badges are kept in the auth store and listed with the node they are about.
"""

from __future__ import annotations

import builtins
import hashlib
import uuid
from typing import Any, Protocol

from kodosumi.badges import CERTIFIED_FLOW, SERVICE_LEVEL, Badge, sign_badge
from kodosumi.errors import InvalidArgument
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.v1 import flow_pb2
from registryd.auth.model import BadgeRecord
from registryd.auth.store import AuthStore
from registryd.clock import Clock
from registryd.registry import Registry
from registryd.service_levels import availabilities, state_changes

DEFAULT_BADGE_LIFETIME = 30 * 86_400.0
DEFAULT_WINDOW = 7 * 86_400.0


class Signer(Protocol):
    """What signs: the CA (its key never leaves the auth provider)."""

    trust_domain: str

    def sign(self, badge: Badge) -> str: ...


class RegistryFacts:
    """What a badge attests, read from the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def flow(self, node_id: str, flow: str) -> dict[str, Any]:
        offer = await self.registry.get_flow_offer(node_id, flow)
        spec = flow_pb2.Flow.FromString(offer.flow.spec)
        return {
            "node_id": node_id,
            "flow": flow,
            "version": spec.version,
            "entrypoint": spec.entrypoint,
            "spec_sha256": hashlib.sha256(offer.flow.spec).hexdigest(),
        }

    async def availability(self, node_id: str, window: float) -> dict[str, Any]:
        """Share of `window` the node was ONLINE, from its state changes in the log (on the
        registry's clock, the one its leases and changes run on; registryd/service_levels)."""
        now = self.registry.clock.now()
        node = await self.registry.get_node(node_id)
        shares = await availabilities(self.registry.store, [node], window, now)
        changes = await state_changes(self.registry.store, node_id, now - window)
        return {
            "node_id": node_id,
            "window_seconds": window,
            "availability": round(min(1.0, shares[node_id]), 6) if window > 0 else 0.0,
            "state_changes": changes,
            "heartbeat_interval_seconds": node.heartbeat_interval,
        }


class BadgeDesk:
    """Issues and lists badges."""

    def __init__(
        self,
        store: AuthStore,
        signer: Signer,
        facts: RegistryFacts,
        clock: Clock,
        lifetime: float = DEFAULT_BADGE_LIFETIME,
    ) -> None:
        self.store = store
        self.signer = signer
        self.facts = facts
        self.clock = clock
        self.lifetime = lifetime

    def _subject(self, node_id: str, flow: str) -> str:
        try:
            domain = self.signer.trust_domain
            subject = (
                SpiffeId.flow(domain, node_id, flow) if flow else SpiffeId.node(domain, node_id)
            )
        except InvalidSpiffeId as e:
            raise InvalidArgument.field("node_id", str(e)) from None
        return str(subject)

    async def issue(
        self,
        kind: str,
        node_id: str,
        flow: str = "",
        ttl: float | None = None,
        window: float | None = None,
    ) -> BadgeRecord:
        now = self.clock.now()
        if kind == CERTIFIED_FLOW:
            if not flow:
                raise InvalidArgument.field("flow", "a certified-flow badge names a flow")
            facts = await self.facts.flow(node_id, flow)
        elif kind == SERVICE_LEVEL:
            facts = await self.facts.availability(node_id, window or DEFAULT_WINDOW)
            if flow:
                facts["flow"] = flow
        else:
            raise InvalidArgument.field("kind", "certified-flow or service-level")
        badge = Badge(
            kind=kind,
            subject=self._subject(node_id, flow),
            issuer=self.signer.trust_domain,
            issued_at=now,
            expires_at=now + (ttl or self.lifetime),
            facts=facts,
            badge_id=uuid.uuid4().hex,
        )
        record = BadgeRecord(
            badge.badge_id,
            kind,
            badge.subject,
            self.signer.sign(badge),
            badge.issued_at,
            badge.expires_at,
            facts,
        )
        await self.store.add_badge(record)
        return record

    async def list(
        self, node_id: str = "", flow: str = "", revoked: bool = False, badge_id: str = ""
    ) -> list[BadgeRecord]:
        """Unexpired badges about the node (and its flows) or flow; `revoked` includes the
        revoked ones (a verifier checking online), `badge_id` picks one."""
        return [
            b
            for b in await self._list(node_id, flow, revoked)
            if not badge_id or b.badge_id == badge_id
        ]

    async def _list(self, node_id: str, flow: str, revoked: bool) -> builtins.list[BadgeRecord]:
        domain = self.signer.trust_domain
        if flow and node_id:
            prefix = self._subject(node_id, flow)
        elif node_id:
            # The node's own badges and those of its flows.
            badges = await self.store.list_badges(
                f"spiffe://{domain}/", self.clock.now(), revoked=revoked
            )
            node = self._subject(node_id, "")
            flows = f"spiffe://{domain}/flow/{node_id}/"
            return [b for b in badges if b.subject == node or b.subject.startswith(flows)]
        else:
            prefix = f"spiffe://{domain}/"
        badges = await self.store.list_badges(prefix, self.clock.now(), revoked=revoked)
        return [b for b in badges if not flow or b.subject.endswith(f"/{flow}")]


class CaSigner:
    """Signs with the CA key held by the auth provider."""

    def __init__(self, trust_domain: str, key: Any) -> None:
        self.trust_domain = trust_domain
        self._key = key

    def sign(self, badge: Badge) -> str:
        return sign_badge(badge, self._key)
