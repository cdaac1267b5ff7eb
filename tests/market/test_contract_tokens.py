"""Signed quotes and receipts checked offline (kodosumi/contracts.py) with a throwaway PKI:
a genuine one verifies with the CA certificate alone; every forgery is refused with a
message that says what is wrong."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kodosumi.contracts import (
    QUOTE,
    RECEIPT,
    ContractError,
    canonical_json,
    read_contract,
    sign_contract,
    verify_contract,
)
from kodosumi.pki import CertificateAuthority, cert_pem, create_ca, key_pem
from kodosumi.spiffe import SpiffeId

DOMAIN = "market.test"
CA = CertificateAuthority(*create_ca(DOMAIN))
NODE_CERT, NODE_KEY = CA.issue(SpiffeId.node(DOMAIN, "n1"))
NODE = (key_pem(NODE_KEY), cert_pem(NODE_CERT))
NOW = dt.datetime.now(dt.UTC).timestamp()
CLAIMS = {"jti": "q1", "node": "n1", "iat": NOW, "exp": NOW + 60, "ceiling": "1.5"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _with_claims(token: str, claims: dict[str, object]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(canonical_json(claims))}.{signature}"


def test_a_signed_quote_verifies_with_the_ca_alone() -> None:
    token = sign_contract(QUOTE, CLAIMS, *NODE)
    verified = verify_contract(token, CA.cert)
    assert verified.kind == QUOTE and verified.claims == CLAIMS
    assert verified.signer == f"spiffe://{DOMAIN}/node/n1"
    assert read_contract(token) == (QUOTE, CLAIMS)


def test_a_changed_claim_or_signature_is_refused() -> None:
    token = sign_contract(RECEIPT, {**CLAIMS, "amount": "5"}, *NODE)
    with pytest.raises(ContractError, match="changed after the node signed it"):
        verify_contract(_with_claims(token, {**CLAIMS, "amount": "0"}), CA.cert)
    head, body, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    with pytest.raises(ContractError, match="signature"):
        verify_contract(f"{head}.{body}.{flipped}", CA.cert)
    with pytest.raises(ContractError, match="a receipt, not a quote"):
        verify_contract(token, CA.cert, QUOTE)


@pytest.mark.parametrize("bad", ["", "a.b", "x.y.z", "e30.e30.e30", "." * 2])
def test_garbage_is_malformed_not_a_crash(bad: str) -> None:
    with pytest.raises(ContractError):
        verify_contract(bad, CA.cert)


def test_another_trust_domain_a_user_or_the_wrong_node_cannot_sign() -> None:
    other = CertificateAuthority(*create_ca("evil.test"))
    cert, key = other.issue(SpiffeId.node("evil.test", "n1"))
    with pytest.raises(ContractError, match="does not chain to this CA"):
        verify_contract(sign_contract(QUOTE, CLAIMS, key_pem(key), cert_pem(cert)), CA.cert)
    user, user_key = CA.issue(SpiffeId.user(DOMAIN, "mallory"))
    with pytest.raises(ContractError, match="not a node"):
        verify_contract(sign_contract(QUOTE, CLAIMS, key_pem(user_key), cert_pem(user)), CA.cert)
    with pytest.raises(ContractError, match="names node 'n2'"):
        verify_contract(sign_contract(QUOTE, {**CLAIMS, "node": "n2"}, *NODE), CA.cert)
    with pytest.raises(ContractError, match="not by a node"):
        verify_contract(sign_contract(QUOTE, CLAIMS, key_pem(CA.key), cert_pem(CA.cert)), CA.cert)


def test_a_certificate_swapped_into_the_header_is_refused() -> None:
    token = sign_contract(QUOTE, CLAIMS, *NODE)
    other_cert, _ = CA.issue(SpiffeId.node(DOMAIN, "n1"))  # same name, another key
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header["x5c"] = [base64.b64encode(other_cert.public_bytes(Encoding.DER)).decode()]
    _, body, signature = token.split(".")
    with pytest.raises(ContractError, match="changed after the node signed it"):
        verify_contract(f"{_b64(canonical_json(header))}.{body}.{signature}", CA.cert)


def test_a_token_signed_outside_its_certificates_validity_is_refused() -> None:
    late = {**CLAIMS, "iat": NOW + 10 * 365 * 86400}
    with pytest.raises(ContractError, match="had expired when it signed"):
        verify_contract(sign_contract(QUOTE, late, *NODE), CA.cert)
