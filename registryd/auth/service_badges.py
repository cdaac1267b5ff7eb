"""Service-level badges from measured service: issued, renewed and revoked by the registry as
the flows' measures change (docs/market.md, "Badges from measured service").

After each measurement (`Registry.measure_service`), every (node, flow) holds the best
configured level it meets, or none:

- it earns a level it does not hold: a badge of that level is signed and issued (a badge of
  another level it held is revoked: "superseded by gold" / "downgraded to silver: ...");
- it holds a level it no longer meets: the badge is revoked, the reason naming the
  shortfall ("below gold: p95 45 s > 30 s");
- it keeps its level: the badge is renewed once half its lifetime has passed.

Badges are short-lived (`[badges] lifetime`): an offline verifier cannot see a revocation,
so the lifetime bounds how long a lapsed level is trusted; a verifier that asks the
registry (`ListBadges` with `include_revoked`) sees it at once. The measures are the badge's
claims (`facts`), with the level and its criteria. One clock, the registry's, runs it all.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass

from kodosumi.badges import SERVICE_LEVEL, Badge
from kodosumi.spiffe import SpiffeId
from registryd.auth.badges import Signer
from registryd.auth.model import BadgeRecord
from registryd.auth.store import AuthStore
from registryd.registry import Registry
from registryd.service_levels import ServiceMeasure, level_rank, shortfalls

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BadgeChange:
    """What one evaluation did to one (node, flow): `issued` or `revoked`."""

    action: str
    node_id: str
    flow: str
    level: str
    badge_id: str
    reason: str = ""


class ServiceBadgeKeeper:
    def __init__(self, store: AuthStore, signer: Signer, registry: Registry) -> None:
        self.store = store
        self.signer = signer
        self.registry = registry
        self.book = registry.service
        self.config = registry.badges
        self._expires: dict[str, float] = {}
        # After a (re)start the registry has no reports until nodes heartbeat again: a held
        # badge is not revoked for want of figures before every node had time to send them.
        lease = registry.rules.config
        self.quiet_until = registry.clock.now() + lease.restart_grace + lease.max_heartbeat_interval

    def _subject(self, node_id: str, flow: str) -> str:
        return str(SpiffeId.flow(self.signer.trust_domain, node_id, flow))

    async def start(self) -> None:
        """Take up the badges held now (unexpired, unrevoked), newest per (node, flow)."""
        now = self.registry.clock.now()
        prefix = f"spiffe://{self.signer.trust_domain}/flow/"
        for badge in await self.store.list_badges(prefix, now, revoked=False):
            node_id, flow = badge.facts.get("node_id"), badge.facts.get("flow")
            if badge.kind == SERVICE_LEVEL and badge.level and node_id and flow:
                self.book.badges[(str(node_id), str(flow))] = (badge.level, badge.badge_id)
                self._expires[badge.badge_id] = badge.expires_at

    async def evaluate(self) -> list[BadgeChange]:
        """Measure, then issue, renew and revoke badges to match the levels earned."""
        earned = await self.registry.measure_service()
        now = self.registry.clock.now()
        changes: list[BadgeChange] = []
        for key in sorted(set(earned) | set(self.book.badges)):
            level = earned.get(key, "")
            held, held_id = self.book.level_of(*key)
            if held_id and self._expires.get(held_id, 0.0) <= now:
                # Lapsed while nobody measured (a stopped registry): it expired, no revocation.
                del self.book.badges[key]
                held, held_id = "", ""
            if held_id and key not in self.book.measures and now < self.quiet_until:
                continue  # no figures yet since the start: wait for them
            if held_id and held != level:
                reason = self._why(held, level, self.book.measures.get(key))
                await self.store.revoke_badge(held_id, now, reason)
                del self.book.badges[key]
                changes.append(BadgeChange("revoked", *key, held, held_id, reason))
                log.info("badge %s (%s) of %s/%s revoked: %s", held_id, held, *key, reason)
            renew = held == level and self._expires.get(held_id, 0.0) - now < self._half_life
            if level and (held != level or renew):
                measure = self.book.measures[key]
                record = await self._issue(measure, level, now)
                self.book.badges[key] = (level, record.badge_id)
                changes.append(BadgeChange("issued", *key, level, record.badge_id))
        self._expires = {
            badge_id: at
            for badge_id, at in self._expires.items()
            if at > now or any(badge_id == held for _, held in self.book.badges.values())
        }
        return changes

    @property
    def _half_life(self) -> float:
        return self.config.lifetime / 2

    def _why(self, held: str, level: str, measure: ServiceMeasure | None) -> str:
        levels = self.config.levels
        if held not in levels:
            return f"level {held!r} is no longer configured"
        if level and level_rank(levels, level) < level_rank(levels, held):
            return f"superseded by {level}"
        if measure is None:
            return f"below {held}: nothing measured within the window"
        short = "; ".join(shortfalls(measure, levels[held]))
        return f"downgraded to {level}: {short}" if level else f"below {held}: {short}"

    async def _issue(self, measure: ServiceMeasure, level: str, now: float) -> BadgeRecord:
        criteria = {k: v for k, v in asdict(self.config.levels[level]).items() if v is not None}
        facts = {**measure.facts(), "level": level, "criteria": criteria}
        badge = Badge(
            kind=SERVICE_LEVEL,
            subject=self._subject(measure.node_id, measure.flow),
            issuer=self.signer.trust_domain,
            issued_at=now,
            expires_at=now + self.config.lifetime,
            facts=facts,
            badge_id=uuid.uuid4().hex,
        )
        record = BadgeRecord(
            badge.badge_id,
            SERVICE_LEVEL,
            badge.subject,
            self.signer.sign(badge),
            badge.issued_at,
            badge.expires_at,
            facts,
            level=level,
        )
        await self.store.add_badge(record)
        self._expires[record.badge_id] = record.expires_at
        return record
