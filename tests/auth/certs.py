"""Certificates for the security matrix: good ones of a throwaway PKI and deliberately bad
ones (expired, not yet valid, two URI SANs, a CA as leaf, a non-spiffe URI, another domain)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kodosumi.pki import CertificateAuthority, cert_pem, generate_private_key, key_pem
from kodosumi.tls import TlsMaterial


def crafted(
    ca: CertificateAuthority,
    uris: list[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    is_ca: bool = False,
) -> TlsMaterial:
    """A client certificate signed by `ca` with exactly the URI SANs given."""
    key = generate_private_key()
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crafted")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    return TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))


def ca_as_leaf(ca: CertificateAuthority) -> TlsMaterial:
    """The CA certificate itself, presented as a client certificate."""
    return TlsMaterial(cert_pem(ca.cert), cert_pem(ca.cert), key_pem(ca.key))
