"""The identity a person logged in with: `kodoclient login TOKEN` keeps it in
`<state>/identity/` (`ca.pem`, `client.pem`, `client.key` 0600, `profile.json` with the
registry it enrolled with and the default node commands go to).

Certificates are short-lived. `renew_if_due` asks the auth provider for a new one (a fresh
key, a CSR, `RenewCertificate` over the current certificate) once two thirds of the lifetime
have passed; the CLI calls it before every command.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
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
from kodosumi.rpc.channel import identity_options
from kodosumi.server_identity import ServerExpectation
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
    # The node commands go to when none is named (`koco login`, `koco nodes use`): its id
    # (empty when given as an address) and the address dialled.
    node_id: str = ""
    node_address: str = ""
    # The registry's id from the enrollment token ("" when it named none: any registry).
    registry_id: str = ""


def identity_files(state_dir: Path) -> TlsFiles:
    return files_in(state_dir / IDENTITY_DIR, "client")


def save_login(state_dir: Path, enrolled: Enrolled) -> LoginProfile:
    files = identity_files(state_dir)
    files.cert.parent.mkdir(parents=True, exist_ok=True)
    files.cert.parent.chmod(0o700)
    write_private(files.key, enrolled.material.key)
    write_public(files.cert, enrolled.material.cert)
    write_public(files.ca_cert, enrolled.material.ca_cert)
    profile = LoginProfile(
        str(enrolled.identity),
        enrolled.registry_address,
        files,
        registry_id=enrolled.registry_id,
    )
    _write_profile(profile)
    return profile


def _write_profile(profile: LoginProfile) -> None:
    data = {"identity": profile.identity, "registry_address": profile.registry_address}
    if profile.registry_id:
        data["registry_id"] = profile.registry_id
    if profile.node_address:
        data |= {"node_id": profile.node_id, "node_address": profile.node_address}
    (profile.files.cert.parent / PROFILE_FILE).write_text(json.dumps(data, indent=2) + "\n")


def set_default_node(state_dir: Path, node_id: str, address: str) -> LoginProfile | None:
    """Make `address` (node `node_id`, if known) the node of this login; None when nobody
    logged in from this state directory."""
    profile = read_login(state_dir)
    if profile is None:
        return None
    changed = replace(profile, node_id=node_id, node_address=address)
    _write_profile(changed)
    return changed


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
    return LoginProfile(
        identity,
        str(data.get("registry_address", "")),
        files,
        node_id=str(data.get("node_id", "")),
        node_address=str(data.get("node_address", "")),
        registry_id=str(data.get("registry_id", "")),
    )


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
    expect = ServerExpectation.registry(profile.registry_id)
    options = identity_options(material, expect)
    with grpc.secure_channel(profile.registry_address, credentials, options) as channel:
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
