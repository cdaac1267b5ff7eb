"""Signatures the gateway puts on what it answers (`/provide_input`'s `signature`).

MIP-003 asks for an Ed25519 signature "similar to CIP-08" by the agent's Cardano key. The
gateway holds no wallet key; it signs with the private key of its own certificate (issued by
the trust domain's CA), over the UTF-8 bytes of the `input_hash`, and answers the signature
as lower-case hex. Anyone with the CA certificate verifies it against the gateway's
certificate (served at `/.well-known/kodogate-cert.pem`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

__all__ = ["Signer"]


class Signer:
    def __init__(self, key_pem: bytes | None, cert_pem: bytes = b"") -> None:
        self.cert_pem = cert_pem
        self._key = serialization.load_pem_private_key(key_pem, None) if key_pem else None

    def sign(self, text: str) -> str:
        data = text.encode()
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256())).hex()
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data).hex()
        return ""
