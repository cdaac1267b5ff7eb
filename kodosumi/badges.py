"""Badges: attestations the auth provider signs about a flow or a node, checked offline.

A badge is a compact JWS (RFC 7515) signed ES256 with the trust domain's CA key:
`base64url(header).base64url(claims).base64url(signature)`. Anyone holding the CA
certificate verifies it without asking anybody; `kodoclient verify` does.

Claims: `iss` (trust domain), `sub` (SPIFFE ID of the flow or node), `kind`
(`certified-flow` or `service-level`), `iat` and `exp` (Unix seconds), `jti` (badge id), and
the attested facts under `facts` (a flow's version and entrypoint, or availability and
run-time figures with their window).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kodosumi.pki import PrivateKey

CERTIFIED_FLOW = "certified-flow"
SERVICE_LEVEL = "service-level"
KINDS = (CERTIFIED_FLOW, SERVICE_LEVEL)
_HEADER = {"alg": "ES256", "typ": "kodosumi-badge+jwt"}
_P256_BYTES = 32


class BadgeError(ValueError):
    """The badge does not verify: malformed, wrong signature, expired or not yet valid."""


@dataclass(frozen=True, slots=True)
class Badge:
    kind: str
    subject: str
    issuer: str
    issued_at: float
    expires_at: float
    facts: dict[str, Any] = field(default_factory=dict)
    badge_id: str = ""

    def claims(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "sub": self.subject,
            "kind": self.kind,
            "iat": int(self.issued_at),
            "exp": int(self.expires_at),
            "jti": self.badge_id,
            "facts": self.facts,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_badge(badge: Badge, ca_key: PrivateKey) -> str:
    """The compact JWS of `badge`, signed with the CA key."""
    if badge.kind not in KINDS:
        raise ValueError(f"unknown badge kind {badge.kind!r}")
    if not badge.badge_id:
        badge = Badge(**{**_fields(badge), "badge_id": uuid.uuid4().hex})
    signing_input = (
        _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(badge.claims(), separators=(",", ":"), sort_keys=True).encode())
    )
    der = ca_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return signing_input + "." + _b64(raw)


def _fields(badge: Badge) -> dict[str, Any]:
    return {name: getattr(badge, name) for name in Badge.__dataclass_fields__}


def read_badge(token: str) -> Badge:
    """The claims of a badge, NOT verified (to show what it says before checking it)."""
    try:
        _, payload, _ = token.strip().split(".")
        claims = json.loads(_unb64(payload))
        return Badge(
            kind=str(claims["kind"]),
            subject=str(claims["sub"]),
            issuer=str(claims["iss"]),
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
            facts=dict(claims.get("facts") or {}),
            badge_id=str(claims.get("jti", "")),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise BadgeError(f"malformed badge: {e}") from None


def verify_badge(token: str, ca_cert: x509.Certificate, now: float | None = None) -> Badge:
    """Check the badge's signature against the CA certificate and its validity window."""
    try:
        header_b64, payload_b64, signature_b64 = token.strip().split(".")
        header = json.loads(_unb64(header_b64))
        raw = _unb64(signature_b64)
    except ValueError as e:
        raise BadgeError(f"malformed badge: {e}") from None
    if header.get("alg") != "ES256" or len(raw) != 2 * _P256_BYTES:
        raise BadgeError("unsupported badge signature")
    key = ca_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadgeError("the CA certificate has no EC key")
    der = encode_dss_signature(
        int.from_bytes(raw[:_P256_BYTES], "big"), int.from_bytes(raw[_P256_BYTES:], "big")
    )
    try:
        key.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadgeError("the badge's signature does not verify with this CA") from None
    badge = read_badge(token)
    at = time.time() if now is None else now
    if at < badge.issued_at - 300:
        raise BadgeError("the badge is not valid yet")
    if at >= badge.expires_at:
        raise BadgeError("the badge has expired")
    return badge
