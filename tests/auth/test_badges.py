"""Badges: signed by the auth provider from registry data, verified offline with the CA
certificate alone; tampered, foreign, expired badges do not verify."""

from __future__ import annotations

import base64
import json
import time

import pytest

from kodosumi.badges import CERTIFIED_FLOW, Badge, BadgeError, sign_badge, verify_badge
from kodosumi.pki import CertificateAuthority, create_ca
from kodosumi.v1 import auth_pb2
from registryd.clock import ManualClock
from tests.auth.conftest import DOMAIN, AuthRegistry
from tests.registry.helpers import register_request


async def test_badges_are_issued_listed_and_verified_offline(auth_registry: AuthRegistry) -> None:
    node = auth_registry.registry(await auth_registry.enroll_node("node-a"))
    await node.RegisterNode(register_request("node-a"), timeout=5)
    clock = auth_registry.daemon.clock
    assert isinstance(clock, ManualClock)
    clock.advance(3600)  # online for an hour of a two-hour window
    admin = auth_registry.auth(auth_registry.admin())
    certified = await admin.IssueBadge(
        auth_pb2.IssueBadgeRequest(
            kind=auth_pb2.BADGE_KIND_CERTIFIED_FLOW, node_id="node-a", flow="hello"
        ),
        timeout=5,
    )
    request = auth_pb2.IssueBadgeRequest(kind=auth_pb2.BADGE_KIND_SERVICE_LEVEL, node_id="node-a")
    request.window.FromSeconds(7200)
    level = await admin.IssueBadge(request, timeout=5)

    badge = verify_badge(certified.badge.token, auth_registry.pki.ca.cert)
    assert badge.kind == CERTIFIED_FLOW
    assert badge.subject == f"spiffe://{DOMAIN}/flow/node-a/hello"
    assert badge.facts["version"] == "1" and badge.facts["entrypoint"] == "flows.hello:run"
    sla = verify_badge(level.badge.token, auth_registry.pki.ca.cert)
    assert sla.subject == f"spiffe://{DOMAIN}/node/node-a"
    assert sla.facts["availability"] == pytest.approx(0.5)

    # Any enrolled person may list them.
    reader = auth_registry.auth(await auth_registry.enroll_user("alice"))
    listed = await reader.ListBadges(auth_pb2.ListBadgesRequest(node_id="node-a"), timeout=5)
    assert {b.token for b in listed.badges} == {certified.badge.token, level.badge.token}
    only_flow = await reader.ListBadges(
        auth_pb2.ListBadgesRequest(node_id="node-a", flow="hello"), timeout=5
    )
    assert [b.token for b in only_flow.badges] == [certified.badge.token]


def _badge(ca: CertificateAuthority, issued_at: float = 0.0, expires_at: float = 0.0) -> str:
    now = time.time()
    badge = Badge(
        CERTIFIED_FLOW,
        f"spiffe://{DOMAIN}/flow/n/f",
        DOMAIN,
        issued_at or now,
        expires_at or now + 60,
        {"v": "1"},
    )
    return sign_badge(badge, ca.key)


def test_tampered_foreign_and_expired_badges_do_not_verify() -> None:
    ca = CertificateAuthority(*create_ca(DOMAIN))
    other = CertificateAuthority(*create_ca(DOMAIN))
    token = _badge(ca)
    assert verify_badge(token, ca.cert).facts == {"v": "1"}

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["facts"]["v"] = "2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    for bad, cert in (
        (f"{header}.{forged}.{signature}", ca.cert),
        (token, other.cert),
        (_badge(ca, issued_at=time.time() - 120, expires_at=time.time() - 60), ca.cert),
        ("not.a-badge", ca.cert),
    ):
        with pytest.raises(BadgeError):
            verify_badge(bad, cert)
