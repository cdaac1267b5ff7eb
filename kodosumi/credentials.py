"""Credentials that change while a process runs.

Certificates from the auth provider are short-lived. A `RotatingCredentials` holds a party's
current key, certificate and trust anchor; a `CertificateRenewer` asks for a new certificate
(a fresh key, a CSR) once most of the lifetime has passed and swaps it in. Servers pick the
new certificate up without a restart (`grpc.dynamic_ssl_server_credentials`: the fetcher runs
before every new handshake), clients on their next connection (`RotatingChannel`).

Code that takes a plain `TlsMaterial` gets a `LiveTlsMaterial` instead: its bytes are those of
the moment it was made, and `kodosumi.rpc.channel.open_channel` / `kodosumi.rpc.server.bind`
follow its `source` to the current credentials.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kodosumi.csr import build_csr
from kodosumi.pki import generate_private_key, key_pem, spiffe_id_of, write_private, write_public
from kodosumi.server_identity import is_reserved
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsFiles, TlsMaterial

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveTlsMaterial(TlsMaterial):
    """A snapshot of rotating credentials that still knows where the current ones are."""

    source: RotatingCredentials = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """What the auth provider answers to a CSR: the certificate (chain) and the CA certificate."""

    cert: bytes
    ca_cert: bytes


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_pair(material: TlsMaterial) -> x509.Certificate:
    """The certificate of `material`, after checking that its key belongs to it."""
    cert = x509.load_pem_x509_certificate(material.cert)
    key = serialization.load_pem_private_key(material.key, password=None)
    if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
        raise ValueError("the private key does not belong to the certificate")
    return cert


class RotatingCredentials:
    """A party's current TLS material, replaced atomically on renewal.

    With `files`, every update is written there too (key 0600), so a restart starts from the
    latest certificate. Listeners run synchronously after each update.
    """

    def __init__(self, material: TlsMaterial, files: TlsFiles | None = None) -> None:
        cert = check_pair(material)
        self.files = files
        self._state: tuple[int, TlsMaterial, x509.Certificate] = (1, material, cert)
        self._listeners: list[Callable[[TlsMaterial], None]] = []

    @classmethod
    def from_files(cls, files: TlsFiles) -> RotatingCredentials:
        return cls(files.read(), files)

    @property
    def generation(self) -> int:
        return self._state[0]

    @property
    def material(self) -> TlsMaterial:
        return self._state[1]

    @property
    def certificate(self) -> x509.Certificate:
        return self._state[2]

    @property
    def identity(self) -> SpiffeId:
        return spiffe_id_of(self.certificate)

    def live(self) -> LiveTlsMaterial:
        m = self.material
        return LiveTlsMaterial(m.ca_cert, m.cert, m.key, source=self)

    def subscribe(self, listener: Callable[[TlsMaterial], None]) -> None:
        self._listeners.append(listener)

    def update(self, material: TlsMaterial) -> None:
        """Use `material` from now on (new connections; live streams keep theirs)."""
        cert = check_pair(material)
        if self.files is not None:
            # Key first: a crash between the writes leaves a pair `check_pair` refuses,
            # never a certificate whose key is lost.
            write_private(self.files.key, material.key)
            write_public(self.files.cert, material.cert)
            write_public(self.files.ca_cert, material.ca_cert)
        generation = self.generation + 1
        self._state = (generation, material, cert)
        log.info(
            "credentials of %s renewed: serial %x valid until %s",
            spiffe_id_of(cert),
            cert.serial_number,
            cert.not_valid_after_utc.isoformat(),
        )
        for listener in list(self._listeners):
            try:
                listener(material)
            except Exception:
                log.exception("a credentials listener failed")

    def server_credentials(
        self, *, require_client_auth: bool = True, chain_with_ca: bool = False
    ) -> grpc.ServerCredentials:
        """Server credentials that follow this object: the fetcher runs before every handshake
        and hands gRPC the new certificate once after each update.

        `chain_with_ca`: send the CA certificate after the leaf, so that a party that has no
        trust anchor yet can pick it out of the handshake by its fingerprint (enrollment).
        """

        def configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
            chain = material.cert + (material.ca_cert if chain_with_ca else b"")
            return grpc.ssl_server_certificate_configuration(
                [(material.key, chain)], root_certificates=material.ca_cert
            )

        delivered = [self.generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Runs on a gRPC core thread: read the state tuple once, touch no event loop.
            generation, material, _ = self._state
            if generation == delivered[0]:
                return None
            delivered[0] = generation
            return configuration(material)

        return grpc.dynamic_ssl_server_credentials(
            configuration(self.material),
            fetch,  # type: ignore[arg-type]  # None means "unchanged" (documented)
            require_client_authentication=require_client_auth,
        )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class RenewalPolicy:
    """Renew once `at_fraction` of a certificate's lifetime has passed; retry with backoff."""

    at_fraction: float = 2 / 3
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    # Sleep at most this long at once, so a wall-clock jump is noticed.
    max_sleep_seconds: float = 60.0


Renew = Callable[[bytes], Awaitable[IssuedCertificate]]


def host_sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DNS names and IP addresses a certificate carries (kept across renewals)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    # The reserved identity names are the CA's to add, never a party's to ask for.
    dns = tuple(n for n in sans.get_values_for_type(x509.DNSName) if not is_reserved(n))
    ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    return dns, ips


class CertificateRenewer:
    """Keeps `credentials` fresh: a new key and certificate before the current one expires."""

    def __init__(
        self,
        credentials: RotatingCredentials,
        renew: Renew,
        policy: RenewalPolicy | None = None,
        *,
        now: Callable[[], dt.datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.credentials = credentials
        self.renew = renew
        self.policy = policy or RenewalPolicy()
        self.now = now
        self.sleep = sleep
        self.renewals = 0
        self.last_error = ""

    def due(self) -> dt.datetime:
        cert = self.credentials.certificate
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return start + (end - start) * self.policy.at_fraction

    async def renew_now(self) -> None:
        """Ask for a certificate of the same identity and host names for a fresh key."""
        current = self.credentials.certificate
        dns, ips = host_sans(current)
        key = generate_private_key()
        csr = build_csr(key, spiffe_id_of(current), dns_names=dns, ip_addresses=ips)
        issued = await self.renew(csr)
        self.credentials.update(TlsMaterial(issued.ca_cert, issued.cert, key_pem(key)))
        self.renewals += 1

    async def run(self) -> None:
        """Renew whenever due, until cancelled; failures are retried with jittered backoff."""
        failures = 0
        while True:
            wait = (self.due() - self.now()).total_seconds()
            if wait > 0:
                await self.sleep(min(wait, self.policy.max_sleep_seconds))
                continue
            try:
                await self.renew_now()
                failures = 0
                self.last_error = ""
            except Exception as e:
                failures += 1
                self.last_error = str(e)
                delay = min(
                    self.policy.retry_max_seconds,
                    self.policy.retry_initial_seconds * 2 ** (failures - 1),
                )
                log.warning("certificate renewal failed (%s); retrying in %.1f s", e, delay)
                await self.sleep(delay * (0.8 + 0.4 * random.random()))


def load_rotating(files: TlsFiles) -> RotatingCredentials | None:
    """Rotating credentials from `files`, or None when they are missing."""
    return RotatingCredentials.from_files(files) if files.exist() else None


def files_in(folder: Path, name: str) -> TlsFiles:
    """`<folder>/ca.pem`, `<folder>/<name>.pem` and `<folder>/<name>.key`."""
    return TlsFiles(folder / "ca.pem", folder / f"{name}.pem", folder / f"{name}.key")


__all__ = [
    "CertificateRenewer",
    "IssuedCertificate",
    "LiveTlsMaterial",
    "RenewalPolicy",
    "RotatingCredentials",
    "check_pair",
    "files_in",
    "host_sans",
    "load_rotating",
]
