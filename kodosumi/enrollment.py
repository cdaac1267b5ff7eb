"""Enrollment, the client side: a one-time token and a fresh key become a certificate.

An enrollment token is one line of text an admin hands to a person or a node. It names where
to enroll (the auth provider's enrollment address and the registry address), the identity it
is for, the SHA-256 fingerprint of the CA certificate, and a secret. The enrollee

1. learns the CA certificate from the enrollment server's TLS handshake and keeps it only if
   its fingerprint is the token's (so no trust anchor has to be copied around by hand),
2. makes a private key that never leaves it and sends a CSR with the token's secret,
3. gets its certificate back (`EnrollmentService/Enroll`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import ssl
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kodosumi.csr import build_csr
from kodosumi.pki import generate_private_key, key_pem
from kodosumi.server_identity import ServerExpectation, trust_domain_of_ca
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, auth_pb2_grpc

TOKEN_PREFIX = "kodo1."


class EnrollmentError(Exception):
    """Enrollment failed: a malformed token, an unreachable or unexpected server, a refusal.

    `code` is the gRPC status of a refusal or an unreachable server (None: a local problem).
    """

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class EnrollmentToken:
    enroll_address: str
    registry_address: str
    identity: str
    ca_fingerprint: str
    secret: str
    # The registry's id (clients then accept exactly that registry), the host names and
    # addresses the enrollee's certificate may carry (servers only; the CA refuses others),
    # and every address the registry advertises. Absent in tokens of older registries.
    registry_id: str = ""
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    registry_addresses: tuple[str, ...] = ()

    def encode(self) -> str:
        data: dict[str, object] = {
            "e": self.enroll_address,
            "r": self.registry_address,
            "i": self.identity,
            "f": self.ca_fingerprint,
            "s": self.secret,
        }
        optional = {
            "g": self.registry_id,
            "d": list(self.dns_names),
            "a": list(self.ip_addresses),
            "ra": list(self.registry_addresses),
        }
        data.update({k: v for k, v in optional.items() if v})
        raw = json.dumps(data, separators=(",", ":")).encode()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> EnrollmentToken:
        text = text.strip()
        if not text.startswith(TOKEN_PREFIX):
            raise EnrollmentError("not a kodosumi enrollment token (it starts with 'kodo1.')")
        body = text[len(TOKEN_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            data = json.loads(raw)
            token = cls(
                str(data["e"]),
                str(data["r"]),
                str(data["i"]),
                str(data["f"]),
                str(data["s"]),
                registry_id=str(data.get("g", "")),
                dns_names=_strings(data.get("d", [])),
                ip_addresses=_strings(data.get("a", [])),
                registry_addresses=_strings(data.get("ra", [])),
            )
            SpiffeId.parse(token.identity)
        except (ValueError, KeyError, TypeError, InvalidSpiffeId) as e:
            raise EnrollmentError(f"malformed enrollment token: {e}") from None
        return token

    @property
    def spiffe_id(self) -> SpiffeId:
        return SpiffeId.parse(self.identity)


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER bytes, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def fetch_ca(address: str, expected_fingerprint: str, timeout: float = 10.0) -> bytes:
    """The PEM CA certificate the server at `address` sends in its TLS handshake, if its
    fingerprint is `expected_fingerprint` (the server is not trusted for anything else)."""
    host, port = _split_address(address)
    context = ssl.create_default_context()
    # The chain is checked against the fingerprint below, not against a trust store.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            # Python 3.13 makes this public (`SSLSocket.get_unverified_chain`).
            chain = tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
            ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain or ()]  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError) as e:
        raise EnrollmentError(
            f"cannot reach the enrollment server {address}: {e}", grpc.StatusCode.UNAVAILABLE
        ) from None
    for der in ders:
        if hashlib.sha256(der).hexdigest() == expected_fingerprint.lower():
            cert = x509.load_der_x509_certificate(der)
            return cert.public_bytes(serialization.Encoding.PEM)
    raise EnrollmentError(
        f"the server at {address} does not present the CA the token names "
        f"(fingerprint {expected_fingerprint[:16]}...)"
    )


@dataclass(frozen=True, slots=True)
class Enrolled:
    """The outcome: credentials for mTLS, the identity, and where the registry is."""

    material: TlsMaterial
    identity: SpiffeId
    registry_address: str
    # The registry's id when the token names it: clients then accept exactly that registry.
    registry_id: str = ""


async def enroll(
    token: EnrollmentToken,
    *,
    ca_pem: bytes | None = None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    time_limit: float = 10.0,
) -> Enrolled:
    """Enroll with `token`: a fresh key, a CSR, the certificate. `ca_pem` skips fetching the
    CA from the handshake (it must still match the token's fingerprint)."""
    if ca_pem is None:
        ca_pem = await asyncio.to_thread(
            fetch_ca, token.enroll_address, token.ca_fingerprint, time_limit
        )
    elif fingerprint(x509.load_pem_x509_certificate(ca_pem)) != token.ca_fingerprint.lower():
        raise EnrollmentError("the given CA certificate is not the one the token names")
    key = generate_private_key()
    csr = build_csr(key, token.spiffe_id, dns_names=dns_names, ip_addresses=ip_addresses)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    # The enrollment server presents the registry's certificate: check that identity, not the
    # host name (the secret goes only to the registry the token names, or any registry).
    expect = ServerExpectation.registry(token.registry_id)
    options = [("grpc.ssl_target_name_override", expect.check_name(trust_domain_of_ca(ca_pem)))]
    async with grpc.aio.secure_channel(token.enroll_address, credentials, options) as channel:
        stub = auth_pb2_grpc.EnrollmentServiceStub(channel)
        try:
            response = await stub.Enroll(
                auth_pb2.EnrollRequest(token=token.secret, csr=csr), timeout=time_limit
            )
        except grpc.aio.AioRpcError as e:
            raise EnrollmentError(
                f"enrollment refused: {e.code().name}: {e.details() or ''}", e.code()
            ) from None
    identity = SpiffeId.parse(response.identity)
    material = TlsMaterial(response.ca_certificate, response.certificate, key_pem(key))
    return Enrolled(
        material,
        identity,
        response.registry_address or token.registry_address,
        token.registry_id,
    )
