"""Signed quotes and receipts (docs/market.md): compact JWS that a node signs, checked offline.

A node signs with its own key, which the trust domain's CA certified. The JWS is the badges'
compact form (`kodosumi/badges.py`: `base64url(header).base64url(claims).base64url(sig)`,
ES256), and its protected header carries the node's certificate chain (`x5c`, leaf first), as
signed agent cards do (`kodosumi/agent_card.py`): whoever holds the CA certificate checks a
quote or a receipt with nothing else and learns which node signed it.

`verify_contract` holds a token to: the ES256 signature by the leaf's key; the chain up to the
CA; the leaf is a node identity of the CA's trust domain, valid when the token was issued;
the claims name that same node (`node`) and the kind the header says (`typ`). Anything else
is a `ContractError` whose message says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kodosumi.pki import spiffe_id_of
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId

QUOTE = "quote"
RECEIPT = "receipt"
KINDS = (QUOTE, RECEIPT)
_P256_BYTES = 32
# A token is small (a few certificates and claims); anything far larger is not one of ours.
MAX_TOKEN_CHARS = 64 * 1024


class ContractError(ValueError):
    """The quote or receipt does not verify; the message says why."""


@dataclass(frozen=True, slots=True)
class Verified:
    kind: str
    claims: dict[str, Any]
    # The SPIFFE ID of the node whose certificate signed it.
    signer: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _typ(kind: str) -> str:
    return f"kodosumi-{kind}+jwt"


def canonical_json(value: Any) -> bytes:
    """The one serialization that is hashed or signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sign_contract(kind: str, claims: dict[str, Any], key_pem: bytes, chain_pem: bytes) -> str:
    """The compact JWS of `claims`, signed with `key_pem`; `chain_pem`: its certificate, then
    any intermediates (the CA's own certificate may follow; verifiers use theirs)."""
    if kind not in KINDS:
        raise ValueError(f"unknown contract kind {kind!r}")
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("contracts are signed with an EC (P-256) key")
    chain = x509.load_pem_x509_certificates(chain_pem)
    header = {
        "alg": "ES256",
        "typ": _typ(kind),
        "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain
        ],
    }
    signing_input = _b64(canonical_json(header)) + "." + _b64(canonical_json(claims))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return signing_input + "." + _b64(raw)


def read_contract(token: str) -> tuple[str, dict[str, Any]]:
    """(kind, claims) of a token, NOT verified (to show what it says)."""
    try:
        header_b64, payload_b64, _ = token.strip().split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise ContractError(f"malformed token: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ContractError("malformed token: header and claims must be JSON objects")
    kind = next((k for k in KINDS if header.get("typ") == _typ(k)), "")
    if not kind:
        raise ContractError(f"not a quote or receipt (typ {header.get('typ')!r})")
    return kind, claims


def _chain(header: dict[str, Any], ca: x509.Certificate, at: dt.datetime) -> x509.Certificate:
    """The leaf of the header's `x5c`, after checking that it chains up to `ca`."""
    der = header.get("x5c")
    if not isinstance(der, list) or not der or len(der) > 8:
        raise ContractError("the token names no signing certificate (x5c)")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in der]
    except (ValueError, TypeError, binascii.Error):
        raise ContractError("the token's certificate chain (x5c) does not decode") from None
    ca_der = ca.public_bytes(serialization.Encoding.DER)
    path = [c for c in certs if c.public_bytes(serialization.Encoding.DER) != ca_der]
    if not path:
        raise ContractError("the token is signed by the CA itself, not by a node")
    for child, parent in zip(path, [*path[1:], ca], strict=True):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise ContractError(
                "the signing certificate does not chain to this CA (another trust domain, "
                "or a forged certificate)"
            ) from None
        if not child.not_valid_before_utc - dt.timedelta(minutes=5) <= at:
            raise ContractError("the signing certificate was not valid yet when it signed")
        if at > child.not_valid_after_utc:
            raise ContractError("the signing certificate had expired when it signed")
    return path[0]


def verify_contract(token: str, ca_cert: x509.Certificate, kind: str = "") -> Verified:
    """Check a quote or receipt against the CA certificate (`kind`: only that kind)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise ContractError("the token is too large to be a quote or receipt")
    found, claims = read_contract(token)
    if kind and found != kind:
        raise ContractError(f"a {found}, not a {kind}")
    header_b64, payload_b64, signature_b64 = token.strip().split(".")
    header = json.loads(_unb64(header_b64))
    if header.get("alg") != "ES256":
        raise ContractError(f"unsupported signature algorithm {header.get('alg')!r}")
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise ContractError("the token has no issue time (iat)")
    try:
        at = dt.datetime.fromtimestamp(float(issued), dt.UTC)
    except (OverflowError, ValueError, OSError):
        raise ContractError("the token's issue time (iat) is out of range") from None
    leaf = _chain(header, ca_cert, at)
    key = leaf.public_key()
    raw = _unb64(signature_b64)
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(raw) != 2 * _P256_BYTES:
        raise ContractError("unsupported signature (not ES256 over P-256)")
    der = encode_dss_signature(
        int.from_bytes(raw[:_P256_BYTES], "big"), int.from_bytes(raw[_P256_BYTES:], "big")
    )
    try:
        key.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ContractError(
            f"the {found}'s signature does not verify: it was changed after the node signed it"
        ) from None
    try:
        signer = spiffe_id_of(leaf)
    except (ValueError, InvalidSpiffeId):
        raise ContractError("the signing certificate carries no SPIFFE identity") from None
    if signer.kind != IdentityKind.NODE:
        raise ContractError(f"signed by {signer}, which is not a node")
    if claims.get("node") != signer.name:
        raise ContractError(f"the {found} names node {claims.get('node')!r} but {signer} signed it")
    return Verified(found, claims, str(signer))
