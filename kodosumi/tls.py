"""The credential files one party uses for mutual TLS, and the development CA that creates them.

Without configuration a node creates a local development CA under its state directory
(`<state>/pki/`), a certificate for itself and one for the local user, so that even the
embedded default runs over mTLS and `kodoclient` on the same machine finds its credentials.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from kodosumi.pki import (
    CertificateAuthority,
    cert_pem,
    key_pem,
    load_certificate,
    spiffe_id_of,
    write_private,
    write_public,
)
from kodosumi.server_identity import identity_name
from kodosumi.spiffe import SpiffeId

DEV_TRUST_DOMAIN = "local.kodosumi"
# Renew development leaf certificates this long before they expire.
_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: the trust anchor (CA certificate), this party's certificate and its key."""

    ca_cert: Path
    cert: Path
    key: Path

    def exist(self) -> bool:
        return self.ca_cert.is_file() and self.cert.is_file() and self.key.is_file()

    def read(self) -> TlsMaterial:
        return TlsMaterial(self.ca_cert.read_bytes(), self.cert.read_bytes(), self.key.read_bytes())


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    ca_cert: bytes
    cert: bytes
    key: bytes


def pki_dir(state_dir: Path) -> Path:
    return state_dir / "pki"


def local_user_name() -> str:
    """The OS user, reduced to the characters a SPIFFE path segment allows."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "local"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "local"


def dev_node_files(state_dir: Path) -> TlsFiles:
    d = pki_dir(state_dir)
    return TlsFiles(d / "ca.pem", d / "node.pem", d / "node.key")


def dev_client_files(state_dir: Path) -> TlsFiles:
    d = pki_dir(state_dir)
    return TlsFiles(d / "ca.pem", d / "client.pem", d / "client.key")


def _needs_renewal(path: Path) -> bool:
    if not path.is_file():
        return True
    cert = load_certificate(path)
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE


def ensure_dev_pki(
    state_dir: Path, node_id: str, *, trust_domain: str = DEV_TRUST_DOMAIN
) -> tuple[TlsFiles, TlsFiles, SpiffeId]:
    """Create (once) the development CA, the node's certificate and the local user's certificate.

    Returns the node's files, the local client's files and the local user's identity. Leaf
    certificates close to expiry, or issued for another node id, are issued anew.
    """
    d = pki_dir(state_dir)
    ca_cert, ca_key = d / "ca.pem", d / "ca.key"
    if ca_cert.is_file() and ca_key.is_file():
        ca = CertificateAuthority.load(ca_cert, ca_key)
    else:
        ca = CertificateAuthority.create(trust_domain, ca_cert, ca_key)
    domain = ca.trust_domain
    node_files, client_files = dev_node_files(state_dir), dev_client_files(state_dir)
    node_identity = SpiffeId.node(domain, node_id)
    if (
        _needs_renewal(node_files.cert)
        or _identity_of(node_files.cert) != node_identity
        or not _carries_identity_names(node_files.cert, node_identity)
    ):
        cert, key = ca.issue(
            node_identity,
            dns_names=("localhost", socket.gethostname()),
            ip_addresses=("127.0.0.1", "::1"),
        )
        write_private(node_files.key, key_pem(key))
        write_public(node_files.cert, cert_pem(cert))
    user = SpiffeId.user(domain, local_user_name())
    if _needs_renewal(client_files.cert):
        cert, key = ca.issue(user)
        write_private(client_files.key, key_pem(key))
        write_public(client_files.cert, cert_pem(cert))
    return node_files, client_files, user


def _carries_identity_names(path: Path, identity: SpiffeId) -> bool:
    """Certificates made before clients checked server identities lack the reserved names."""
    cert = load_certificate(path)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return identity_name(identity) in sans.get_values_for_type(x509.DNSName)


def _identity_of(path: Path) -> SpiffeId | None:
    if not path.is_file():
        return None
    return spiffe_id_of(load_certificate(path))
