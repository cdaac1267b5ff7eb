"""Signed A2A agent cards: JWS (RFC 7515, ES256) over the JCS-canonical card (RFC 8785).

A node signs its cards with its own key, which the trust domain's CA certified: the
protected header carries the node's certificate (`x5c`), so anyone holding the CA
certificate verifies a card offline, as badges are verified (`kodosumi/badges.py`), and
learns which node signed it. Canonicalization and the JWS itself are the a2a-sdk's
(`a2a.utils.signing`), so any A2A implementation that follows §8.4 checks them the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from a2a.types import a2a_pb2 as a2a
from a2a.utils.signing import (
    SignatureVerificationError,
    create_agent_card_signer,
    create_signature_verifier,
)
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kodosumi.pki import spiffe_id_of
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId

ALGORITHM = "ES256"


class CardSignatureError(ValueError):
    """No signature of the card verifies with the CA (or the card carries none)."""


def _b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def sign_card(card: a2a.AgentCard, key_pem: bytes, cert_pem: bytes) -> a2a.AgentCard:
    """A copy of `card` with one signature by `key_pem`, whose certificate is `cert_pem`."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("agent cards are signed with an EC (P-256) key")
    signed = a2a.AgentCard()
    signed.CopyFrom(card)
    del signed.signatures[:]
    header: dict[str, Any] = {
        "alg": ALGORITHM,
        "typ": "JOSE",
        "kid": f"{spiffe_id_of(cert)}#{cert.serial_number:x}",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    signer = create_agent_card_signer(key, header)  # type: ignore[arg-type]
    return signer(signed)


def _signer_cert(
    signature: a2a.AgentCardSignature, ca_cert: x509.Certificate, now: dt.datetime
) -> x509.Certificate:
    header = _b64url_json(signature.protected)
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise CardSignatureError("unsupported signature algorithm")
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain:
        raise CardSignatureError("the signature names no certificate (x5c)")
    cert = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CardSignatureError("the signing certificate is not issued by this CA") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CardSignatureError("the signing certificate is not valid now")
    return cert


def _key_of(cert: x509.Certificate) -> Callable[[str | None, str | None], Any]:
    public_key = cert.public_key()
    return lambda kid, jku: public_key


def verify_card(
    card: a2a.AgentCard, ca_cert: x509.Certificate, now: dt.datetime | None = None
) -> SpiffeId:
    """The identity that signed `card`, after checking one of its signatures: the signing
    certificate chains to `ca_cert` and is valid now, and the JWS covers the canonical card."""
    if not card.signatures:
        raise CardSignatureError("the card is not signed")
    at = now or dt.datetime.now(dt.UTC)
    problems: list[str] = []
    for signature in card.signatures:
        try:
            cert = _signer_cert(signature, ca_cert, at)
            identity = spiffe_id_of(cert)
        except (CardSignatureError, ValueError, InvalidSpiffeId) as e:
            problems.append(str(e))
            continue
        single = a2a.AgentCard()
        single.CopyFrom(card)
        del single.signatures[:]
        single.signatures.append(signature)
        verifier = create_signature_verifier(_key_of(cert), [ALGORITHM])
        try:
            verifier(single)
        except SignatureVerificationError:
            problems.append("the signature does not match the card")
            continue
        return identity
    raise CardSignatureError("; ".join(problems) or "no valid signature")


def card_verifier(ca_cert: x509.Certificate) -> Callable[[a2a.AgentCard], None]:
    """A `signature_verifier` for the a2a-sdk (card resolver, `get_extended_agent_card`)."""

    def verify(card: a2a.AgentCard) -> None:
        verify_card(card, ca_cert)

    return verify
