"""The registry's mTLS credentials: its certificate, key and trust anchor.

Three sources, by configuration (`TlsConfig`):

- a certificate and key given as they are (`ca_cert`, `cert`, `key`);
- an existing CA (`ca_cert`, `ca_key`), shared with the nodes so that registry and nodes are
  one trust domain: the registry issues itself `spiffe://<domain>/registry/<id>` with it;
- nothing: a development CA created once in `<state_dir>/pki`, which also issues a client
  certificate for the local user (`pki/client.pem`) for tools on this machine.

Issued certificates carry DNS/IP SANs for localhost, 127.0.0.1, ::1, the host name and any
`tls.hosts`, and are issued anew when close to expiry or no longer matching.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from kodosumi.pki import (
    CertificateAuthority,
    cert_pem,
    key_pem,
    load_certificate,
    spiffe_id_of,
    write_private,
    write_public,
)
from kodosumi.server_identity import reserved_names
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId, SpiffeId
from kodosumi.tls import TlsFiles, TlsMaterial, local_user_name, pki_dir
from registryd.config import ConfigError, TlsConfig

_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RegistryCredentials:
    files: TlsFiles
    identity: SpiffeId
    # The local user's client files (development CA only).
    client: TlsFiles | None = None
    # The CA with its key, when the registry holds it (the auth provider issues with it).
    ca: CertificateAuthority | None = None

    @property
    def trust_domain(self) -> str:
        return self.identity.trust_domain

    def material(self) -> TlsMaterial:
        return self.files.read()


def ensure_credentials(state_dir: Path, registry_id: str, tls: TlsConfig) -> RegistryCredentials:
    """Find or make the registry's credentials (see the module docstring)."""
    if tls.cert is not None or tls.key is not None:
        return _given(tls)
    if (tls.ca_cert is None) != (tls.ca_key is None):
        raise ConfigError("tls: ca_cert and ca_key go together (or set ca_cert, cert and key)")
    d = pki_dir(state_dir)
    client = None
    if tls.ca_cert is not None and tls.ca_key is not None:
        ca_path = tls.ca_cert
        ca = _load_ca(tls.ca_cert, tls.ca_key)
    else:
        ca_path, ca_key = d / "ca.pem", d / "ca.key"
        if ca_path.is_file() and ca_key.is_file():
            ca = _load_ca(ca_path, ca_key)
        else:
            ca = CertificateAuthority.create(tls.trust_domain, ca_path, ca_key)
        client = TlsFiles(ca_path, d / "client.pem", d / "client.key")
        _ensure_leaf(ca, client, SpiffeId.user(ca.trust_domain, local_user_name()), hosts=())
    try:
        identity = SpiffeId.registry(ca.trust_domain, registry_id)
    except InvalidSpiffeId as e:
        raise ConfigError(f"registry_id: {e}") from None
    files = TlsFiles(ca_path, d / "registry.pem", d / "registry.key")
    _ensure_leaf(ca, files, identity, hosts=_server_hosts(tls.hosts))
    return RegistryCredentials(files, identity, client, ca)


def _given(tls: TlsConfig) -> RegistryCredentials:
    if tls.cert is None or tls.key is None or tls.ca_cert is None:
        raise ConfigError("tls: cert and key need each other and ca_cert (the trust anchor)")
    files = TlsFiles(tls.ca_cert, tls.cert, tls.key)
    if not files.exist():
        raise ConfigError(f"tls: missing file among {tls.ca_cert}, {tls.cert}, {tls.key}")
    try:
        identity = spiffe_id_of(load_certificate(tls.cert))
    except (InvalidSpiffeId, ValueError) as e:
        raise ConfigError(f"tls.cert {tls.cert}: {e}") from None
    if identity.kind is not IdentityKind.REGISTRY:
        raise ConfigError(f"tls.cert {tls.cert}: {identity} is not a registry identity")
    return RegistryCredentials(files, identity)


def _load_ca(cert: Path, key: Path) -> CertificateAuthority:
    try:
        return CertificateAuthority.load(cert, key)
    except (OSError, ValueError) as e:
        raise ConfigError(f"tls: cannot load the CA {cert} / {key}: {e}") from None


def _server_hosts(extra: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("localhost", socket.gethostname(), "127.0.0.1", "::1", *extra)))


def _split_hosts(hosts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    dns, ips = [], []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.append(host)
    return tuple(dns), tuple(ips)


def _ensure_leaf(
    ca: CertificateAuthority, files: TlsFiles, identity: SpiffeId, hosts: tuple[str, ...]
) -> None:
    dns, ips = _split_hosts(hosts)
    if (
        files.cert.is_file()
        and files.key.is_file()
        and _still_good(load_certificate(files.cert), ca, identity, dns, ips)
    ):
        return
    cert, key = ca.issue(identity, dns_names=dns, ip_addresses=ips)
    write_private(files.key, key_pem(key))
    write_public(files.cert, cert_pem(cert))


def _still_good(
    cert: x509.Certificate,
    ca: CertificateAuthority,
    identity: SpiffeId,
    dns: tuple[str, ...],
    ips: tuple[str, ...],
) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
        if spiffe_id_of(cert) != identity:
            return False
    except (InvalidSignature, ValueError, TypeError, InvalidSpiffeId):
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE:
        return False
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have_dns = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    # The CA adds the reserved identity names; a certificate without them predates them.
    return have_dns == set(dns) | set(reserved_names(identity)) and have_ips == set(ips)
