"""X.509 material for a trust domain: a private CA and leaf certificates with one SPIFFE URI SAN.

Keys are ECDSA P-256: small, fast to generate, and accepted by gRPC's TLS stack.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kodosumi.server_identity import is_reserved, reserved_names
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.sqlite import private_dir

PrivateKey = ec.EllipticCurvePrivateKey
DEFAULT_LEAF_VALIDITY = dt.timedelta(days=30)
DEFAULT_CA_VALIDITY = dt.timedelta(days=3650)
# Certificates are valid from a little before "now" so that a peer whose clock is slightly
# behind does not reject a certificate that was just issued.
_CLOCK_SKEW = dt.timedelta(minutes=5)


def generate_private_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(
    trust_domain: str, *, validity: dt.timedelta = DEFAULT_CA_VALIDITY
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA for `trust_domain`; its URI SAN is the trust domain itself."""
    key = generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kodosumi CA {trust_domain}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    identity: SpiffeId,
    *,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    validity: dt.timedelta = DEFAULT_LEAF_VALIDITY,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A leaf certificate for `identity` with exactly one URI SAN, usable as TLS server and client.

    DNS and IP SANs are only for TLS host-name checks; identity comes from the URI SAN alone.
    Server identities (nodes, registries) also get the reserved names clients check their
    identity by (`kodosumi.server_identity`); reserved names asked for are replaced by those.
    """
    start = not_before or (_now() - _CLOCK_SKEW)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(identity))]
    sans += [x509.DNSName(name) for name in dns_names if not is_reserved(name)]
    sans += [x509.DNSName(name) for name in reserved_names(identity)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def spiffe_id_of(cert: x509.Certificate) -> SpiffeId:
    """The identity a leaf certificate carries; exactly one spiffe URI SAN, or InvalidSpiffeId."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidSpiffeId("certificate has no subject alternative names") from None
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise InvalidSpiffeId(f"certificate must carry exactly one URI SAN, it has {len(uris)}")
    return SpiffeId.parse(uris[0])


def is_ca_certificate(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write secret material readable by its owner only (created 0600, never world-readable),
    in a folder only its owner may enter."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA certificate with its key, able to issue leaf certificates."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def trust_domain(self) -> str:
        sans = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return sans.get_values_for_type(x509.UniformResourceIdentifier)[0].removeprefix("spiffe://")

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        return cls(load_certificate(cert_path), load_private_key(key_path))

    @classmethod
    def create(cls, trust_domain: str, cert_path: Path, key_path: Path) -> CertificateAuthority:
        cert, key = create_ca(trust_domain)
        write_private(key_path, key_pem(key))
        write_public(cert_path, cert_pem(cert))
        return cls(cert, key)

    def issue(
        self,
        identity: SpiffeId,
        *,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        validity: dt.timedelta = DEFAULT_LEAF_VALIDITY,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A fresh key and its certificate (for parties that let the CA holder make their key)."""
        key = generate_private_key()
        cert = issue_certificate(
            self.cert,
            self.key,
            key.public_key(),
            identity,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            validity=validity,
        )
        return cert, key
