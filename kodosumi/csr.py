"""Certificate signing requests: how a party asks the auth provider for a certificate while
its private key stays with it.

A CSR names exactly one SPIFFE URI SAN (the identity asked for) and, for servers, the DNS
names and IP addresses clients dial it by. The auth provider decides the identity; the CSR
only proves possession of the key and must not ask for anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kodosumi.pki import PrivateKey
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId

# A PEM CSR of a P-256 key with a handful of SANs is well under 2 KiB.
MAX_CSR_BYTES = 16 * 1024


class InvalidCsr(ValueError):
    """The bytes are not a usable certificate signing request."""


@dataclass(frozen=True, slots=True)
class CsrRequest:
    """What a verified CSR asks for: a public key, an identity, host names for TLS checks."""

    public_key: ec.EllipticCurvePublicKey
    identity: SpiffeId | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def build_csr(
    key: PrivateKey,
    identity: SpiffeId,
    *,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> bytes:
    """A PEM CSR for `identity`, signed with `key` (proof of possession)."""
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(identity))]
    sans += [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.name)]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def read_csr(pem: bytes) -> CsrRequest:
    """Parse and verify a PEM CSR: valid signature, a P-256 key, at most one URI SAN."""
    if not pem or len(pem) > MAX_CSR_BYTES:
        raise InvalidCsr("empty or oversized certificate signing request")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise InvalidCsr(f"not a PEM certificate signing request: {e}") from None
    if not csr.is_signature_valid:
        raise InvalidCsr("the signing request's signature does not verify")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidCsr("the key must be an ECDSA P-256 key")
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CsrRequest(key, None, (), ())
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) > 1:
        raise InvalidCsr("a signing request names at most one URI SAN")
    try:
        identity = SpiffeId.parse(uris[0]) if uris else None
    except InvalidSpiffeId as e:
        raise InvalidCsr(str(e)) from None
    dns = tuple(sans.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    return CsrRequest(key, identity, dns, ips)
