"""The node's own credentials, from one of three sources, and joining a trust domain.

1. `[tls]` in the configuration: the files as they are (renewed by whoever manages them).
2. Enrolled with `kodosumid --join TOKEN`: `<state>/pki/enrolled/` (`ca.pem`, `node.pem`,
   `node.key`, `enrollment.json`). These are short-lived: the node renews them with the auth
   provider, serves the renewed certificate without a restart and dials with it.
3. Otherwise the development CA in `<state>/pki` (unchanged: the local user is an admin).

The auth provider is the enrollment's registry unless `[auth] address` names another.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from kodosumi.addresses import LOOPBACK_IPS, LOOPBACK_NAMES, certificate_hosts
from kodosumi.credentials import RotatingCredentials, files_in
from kodosumi.enrollment import EnrollmentError, EnrollmentToken, enroll
from kodosumi.errors import InvalidArgument
from kodosumi.pki import load_certificate, spiffe_id_of, write_private, write_public
from kodosumi.spiffe import IdentityKind, SpiffeId
from kodosumi.tls import TlsFiles, TlsMaterial, ensure_dev_pki, pki_dir
from kodosumid.config import NodeConfig

log = logging.getLogger(__name__)

ENROLLMENT_FILE = "enrollment.json"


def enrolled_dir(state_dir: Path) -> Path:
    return pki_dir(state_dir) / "enrolled"


def enrolled_files(state_dir: Path) -> TlsFiles:
    return files_in(enrolled_dir(state_dir), "node")


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    """What the node serves and dials with, and whom it asks about roles and revocations."""

    tls: TlsMaterial | None
    identity: SpiffeId | None
    # Extra admins: the local user of a development CA.
    extra_admins: tuple[str, ...] = ()
    # The development client files for local tools (dev CA only).
    client_files: TlsFiles | None = None
    # Enrolled credentials, renewed while the node runs.
    rotating: RotatingCredentials | None = None
    # The auth provider ("" for none) and the registry the node enrolled with.
    auth_address: str = ""
    registry_address: str = ""
    # The id of the registry the node enrolled with ("" when the token named none).
    registry_id: str = ""
    # The files of `tls` on disk (read again by processes that dial as this node, such as
    # the executors of flows without an identity of their own); None when insecure.
    files: TlsFiles | None = None

    @property
    def trust_domain(self) -> str:
        return self.identity.trust_domain if self.identity else ""


def _read_enrollment(state_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((enrolled_dir(state_dir) / ENROLLMENT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def node_credentials(config: NodeConfig) -> NodeCredentials:
    """Find the node's credentials (see the module docstring)."""
    if config.insecure:
        return NodeCredentials(None, None)
    if config.tls is not None:
        files = TlsFiles(config.tls.ca_cert, config.tls.cert, config.tls.key)
        identity = spiffe_id_of(load_certificate(files.cert))
        return NodeCredentials(
            files.read(), identity, auth_address=config.auth.address, files=files
        )
    enrolled = enrolled_files(config.state_dir)
    if enrolled.exist():
        rotating = RotatingCredentials.from_files(enrolled)
        identity = rotating.identity
        if identity.kind is not IdentityKind.NODE or identity.name != config.node_id:
            raise InvalidArgument.field(
                "node.id",
                f"the enrolled certificate is for {identity}, not node {config.node_id!r}",
            )
        info = _read_enrollment(config.state_dir)
        registry = info.get("registry_address", "")
        return NodeCredentials(
            rotating.live(),
            identity,
            rotating=rotating,
            auth_address=config.auth.address or registry,
            registry_address=registry,
            registry_id=info.get("registry_id", ""),
            files=enrolled,
        )
    files, client, user = ensure_dev_pki(config.state_dir, config.node_id)
    identity = spiffe_id_of(load_certificate(files.cert))
    return NodeCredentials(
        files.read(),
        identity,
        extra_admins=(str(user),),
        client_files=client,
        auth_address=config.auth.address,
        files=files,
    )


def _server_hosts(
    config: NodeConfig, token: EnrollmentToken | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names the node's certificate asks for: loopback, and of the names clients dial it by
    (advertised hosts; for 0.0.0.0 this host's addresses) those the token allows, plus every
    name the token allows. The CA refuses a CSR asking for more (issue 11), so the others are
    left out with a warning: kodosumi's own clients check the node's identity, not these
    names; an admin adds them with `koco pki approve-names` (the next renewal carries them).
    """
    wanted_dns, wanted_ips = certificate_hosts(config.listen, config.advertise)
    allowed_dns = {*LOOPBACK_NAMES, *(token.dns_names if token else ())}
    allowed_ips = {*LOOPBACK_IPS, *(token.ip_addresses if token else ())}
    dns = [n for n in wanted_dns if n in allowed_dns]
    ips = [a for a in wanted_ips if a in allowed_ips]
    left_out = [n for n in (*wanted_dns, *wanted_ips) if n not in (*dns, *ips)]
    if left_out:
        log.warning(
            "the certificate will not name %s: the enrollment token does not allow it "
            "(`koco pki approve-names NODE --dns/--ip` adds names later)",
            ", ".join(left_out),
        )
    dns += [n for n in (token.dns_names if token else ()) if n not in dns]
    ips += [a for a in (token.ip_addresses if token else ()) if a not in ips]
    return tuple(dns), tuple(ips)


async def join(config: NodeConfig, token_text: str, ca_pem: bytes | None = None) -> NodeConfig:
    """Enroll the node with a one-time token (`kodosumid --join`): its key stays here, the
    certificate lands in `<state>/pki/enrolled/`. Returns the config with the token's node id
    (and registry, when none is configured)."""
    try:
        token = EnrollmentToken.decode(token_text)
    except EnrollmentError as e:
        raise InvalidArgument.field("join", str(e)) from None
    identity = token.spiffe_id
    if identity.kind is not IdentityKind.NODE:
        raise InvalidArgument.field("join", f"the token enrolls {identity}, not a node")
    if config.node_id and config.node_id != identity.name:
        raise InvalidArgument.field(
            "node.id", f"the token is for node {identity.name!r}, not {config.node_id!r}"
        )
    dns, ips = _server_hosts(config, token)
    try:
        enrolled = await enroll(token, ca_pem=ca_pem, dns_names=dns, ip_addresses=ips)
    except EnrollmentError as e:
        raise InvalidArgument.field("join", str(e)) from None
    files = enrolled_files(config.state_dir)
    write_private(files.key, enrolled.material.key)
    write_public(files.cert, enrolled.material.cert)
    write_public(files.ca_cert, enrolled.material.ca_cert)
    info = {
        "identity": str(identity),
        "registry_address": enrolled.registry_address,
        "registry_id": enrolled.registry_id,
    }
    (enrolled_dir(config.state_dir) / ENROLLMENT_FILE).write_text(json.dumps(info, indent=2))
    # The node keeps its id across restarts (kodosumid.config.ensure_node_id reads this file).
    (config.state_dir / "node_id").write_text(identity.name + "\n")
    return replace(
        config,
        node_id=identity.name,
        registry_address=config.registry_address or enrolled.registry_address,
    )
