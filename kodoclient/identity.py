"""The identity a person logged in with: `kodoclient login TOKEN` keeps it in
`<state>/identity/` (`ca.pem`, `client.pem`, `client.key` 0600, `profile.json`).

Certificates are short-lived. `renew_if_due` asks the auth provider for a new one (a fresh
key, a CSR, `RenewCertificate` over the current certificate) once two thirds of the lifetime
have passed; the CLI calls it before every command.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import grpc

from kodosumi.credentials import files_in, host_sans
from kodosumi.csr import build_csr
from kodosumi.enrollment import Enrolled
from kodosumi.pki import (
    generate_private_key,
    key_pem,
    load_certificate,
    spiffe_id_of,
    write_private,
    write_public,
)
from kodosumi.tls import TlsFiles
from kodosumi.v1 import auth_pb2, auth_pb2_grpc

IDENTITY_DIR = "identity"
PROFILE_FILE = "profile.json"
RENEW_AT_FRACTION = 2 / 3


@dataclass(frozen=True, slots=True)
class LoginProfile:
    identity: str
    registry_address: str
    files: TlsFiles


def identity_files(state_dir: Path) -> TlsFiles:
    return files_in(state_dir / IDENTITY_DIR, "client")


def save_login(state_dir: Path, enrolled: Enrolled) -> LoginProfile:
    files = identity_files(state_dir)
    files.cert.parent.mkdir(parents=True, exist_ok=True)
    files.cert.parent.chmod(0o700)
    write_private(files.key, enrolled.material.key)
    write_public(files.cert, enrolled.material.cert)
    write_public(files.ca_cert, enrolled.material.ca_cert)
    profile = {"identity": str(enrolled.identity), "registry_address": enrolled.registry_address}
    (files.cert.parent / PROFILE_FILE).write_text(json.dumps(profile, indent=2) + "\n")
    return LoginProfile(str(enrolled.identity), enrolled.registry_address, files)


def read_login(state_dir: Path) -> LoginProfile | None:
    """The logged-in identity, or None when nobody logged in from this state directory."""
    files = identity_files(state_dir)
    if not files.exist():
        return None
    try:
        data = json.loads((files.cert.parent / PROFILE_FILE).read_text())
    except (OSError, ValueError):
        data = {}
    identity = str(data.get("identity") or spiffe_id_of(load_certificate(files.cert)))
    return LoginProfile(identity, str(data.get("registry_address", "")), files)


def renewal_due(files: TlsFiles, now: dt.datetime | None = None) -> bool:
    cert = load_certificate(files.cert)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return (now or dt.datetime.now(dt.UTC)) >= start + (end - start) * RENEW_AT_FRACTION


def renew(profile: LoginProfile, timeout: float = 10.0) -> None:
    """Renew the logged-in certificate now (blocking; a fresh key replaces the old one)."""
    material = profile.files.read()
    current = load_certificate(profile.files.cert)
    key = generate_private_key()
    dns, ips = host_sans(current)
    csr = build_csr(key, spiffe_id_of(current), dns_names=dns, ip_addresses=ips)
    credentials = grpc.ssl_channel_credentials(material.ca_cert, material.key, material.cert)
    with grpc.secure_channel(profile.registry_address, credentials) as channel:
        response = auth_pb2_grpc.AuthServiceStub(channel).RenewCertificate(
            auth_pb2.RenewCertificateRequest(csr=csr), timeout=timeout
        )
    write_private(profile.files.key, key_pem(key))
    write_public(profile.files.cert, response.certificate)
    write_public(profile.files.ca_cert, response.ca_certificate)


def renew_if_due(state_dir: Path) -> bool:
    """Renew the logged-in certificate if two thirds of its lifetime passed; True if renewed.
    A failure leaves the current certificate (it may still be valid) and returns False."""
    profile = read_login(state_dir)
    if profile is None or not profile.registry_address or not renewal_due(profile.files):
        return False
    try:
        renew(profile)
    except grpc.RpcError:
        return False
    return True
