"""`koco pki ...`: the trust domain's CA, node enrollment tokens, certificates, revocation
and badges. `init` works offline; the other commands talk to the auth provider (admins)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from pathlib import Path

import click
from rich.table import Table

from kodoclient.auth import BADGE_KINDS, duration
from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, issue_token, registry_option
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import timestamp
from kodoclient.identity import PROFILE_FILE, identity_files
from kodosumi.addresses import join_host_port, split_host_port
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.tls import local_user_name
from kodosumi.v1 import auth_pb2 as pb

# The first admin's certificate, made offline by `init`; renewed through the registry later.
ADMIN_CERT_LIFETIME = dt.timedelta(days=1)


@click.group("pki")
def pki() -> None:
    """The trust domain: CA, enrollment tokens for nodes, certificates, revocation, badges."""


@pki.command("init")
@click.option("--trust-domain", required=True, metavar="DOMAIN", help="e.g. acme.kodosumi")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the CA lives (default <state-dir>/ca).",
)
@click.option("--admin", metavar="NAME", help="The first admin (default: your OS user).")
@click.option(
    "--registry",
    metavar="HOST:PORT",
    default="127.0.0.1:7460",
    show_default=True,
    help="Where the registry will be dialled (its host's LAN address or DNS name for a LAN).",
)
@click.option("--force", is_flag=True, help="Replace an existing CA (every certificate dies).")
@click.pass_context
def init(
    ctx: click.Context,
    trust_domain: str,
    folder: Path | None,
    admin: str | None,
    registry: str,
    force: bool,
) -> None:
    """Create the CA of a trust domain and the first admin's certificate."""
    state = state_of(ctx)
    folder = folder or state.settings.state / "ca"
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if key_path.exists() and not force:
        raise click.UsageError(f"{key_path} exists; --force replaces the CA")
    name = admin or local_user_name()
    try:
        identity = SpiffeId.user(trust_domain, name)
    except InvalidSpiffeId as e:
        raise click.BadParameter(str(e)) from None
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca = CertificateAuthority.create(trust_domain, cert_path, key_path)
    cert, key = ca.issue(identity, validity=ADMIN_CERT_LIFETIME)
    files = identity_files(state.settings.state)
    files.cert.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(files.cert.parent, 0o700)
    write_private(files.key, key_pem(key))
    write_public(files.cert, cert_pem(cert))
    write_public(files.ca_cert, cert_pem(ca.cert))
    profile = {"identity": str(identity), "registry_address": registry}
    (files.cert.parent / PROFILE_FILE).write_text(json.dumps(profile, indent=2) + "\n")
    if state.settings.json:
        state.emit(
            {
                "trust_domain": trust_domain,
                "ca_cert": str(cert_path),
                "ca_key": str(key_path),
                "admin": str(identity),
            }
        )
        ctx.exit(0)
    state.out.print(
        f"CA of trust domain {trust_domain}: {cert_path} (key {key_path}, mode 0600)\n"
        f"admin {identity}: {files.cert}\n\nstart the registry with it:\n"
        f"  {registryd_command(cert_path, key_path, name, registry)}",
        highlight=False,
        soft_wrap=True,
    )


def registryd_command(ca_cert: Path, ca_key: Path, admin: str, registry: str) -> str:
    """The `registryd` command for a registry others dial at `registry`: on loopback it
    listens there; otherwise on every interface of its port, advertising `registry` (what
    tokens carry and its certificate names)."""
    command = f"registryd --ca-cert {ca_cert} --ca-key {ca_key} --admin {admin}"
    host, port = split_host_port(registry)
    port = port or 7460
    if host in ("", "localhost") or _loopback(host):
        return f"{command} --listen {join_host_port(host or '127.0.0.1', port)}"
    return f"{command} --listen 0.0.0.0:{port} --advertise {join_host_port(host, port)}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_DNS = click.option(
    "--dns", "dns_names", multiple=True, metavar="NAME", help="A DNS name of the node (repeat)."
)
_IP = click.option(
    "--ip", "ip_addresses", multiple=True, metavar="ADDRESS", help="An IP of the node (repeat)."
)


@pki.command("token")
@click.option("--node", "node_id", required=True, metavar="NODE_ID", help="The node's id.")
@click.option("--ttl", type=float, metavar="SECONDS", help="Token lifetime (1 day).")
@_DNS
@_IP
@registry_option
@json_option
@click.pass_context
def token(
    ctx: click.Context,
    node_id: str,
    ttl: float | None,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    registry: str | None,
) -> None:
    """A one-time enrollment token for a node: `kodosumid --join TOKEN`.

    The node's certificate may carry the --dns names and --ip addresses given here (beyond
    loopback and the registry's `[auth] allowed_dns/allowed_ips`); it asks for no others.
    """
    state = state_of(ctx)

    async def body() -> ExitCode:
        return await issue_token(
            state, registry, pb.IDENTITY_KIND_NODE, node_id, ttl, dns_names, ip_addresses
        )

    execute(ctx, body)


@pki.command("approve-names")
@click.argument("node_id", metavar="NODE_ID")
@_DNS
@_IP
@registry_option
@json_option
@click.pass_context
def approve_names(
    ctx: click.Context,
    node_id: str,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    registry: str | None,
) -> None:
    """Replace the host names NODE_ID's certificates may carry (a new address without a new
    enrollment); the node's next renewal carries exactly these."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.ApproveHostNamesRequest(
            node_id=node_id, dns_names=dns_names, ip_addresses=ip_addresses
        )
        async with auth_client(state, registry) as client:
            response = await client.call("ApproveHostNames", request)
        if state.settings.json:
            state.emit(record(response))
        else:
            names = [*response.dns_names, *response.ip_addresses]
            click.echo(f"{response.identity}: {', '.join(names) or 'loopback only'}")
        return exit_codes.OK

    execute(ctx, body)


@pki.command("certs")
@click.option("--identity", default="", metavar="SPIFFE_ID", help="Only this identity's.")
@click.option("--all", "include_expired", is_flag=True, help="Also expired certificates.")
@registry_option
@json_option
@click.pass_context
def certs(ctx: click.Context, identity: str, include_expired: bool, registry: str | None) -> None:
    """List the certificates the auth provider issued."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.ListCertificatesRequest(identity=identity, include_expired=include_expired)
        async with auth_client(state, registry) as client:
            response = await client.call("ListCertificates", request)
        if state.settings.json:
            for c in response.certificates:
                state.emit(record(c))
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("SERIAL", "IDENTITY", "VALID FROM", "EXPIRES", "REVOKED"):
            table.add_column(column, overflow="fold")
        for c in response.certificates:
            table.add_row(
                c.serial,
                c.identity,
                timestamp(c.start_time),
                timestamp(c.expire_time),
                "yes" if c.revoked else "",
            )
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@pki.command("revoke")
@click.option("--serial", help="One certificate, by its hex serial (see `pki certs`).")
@click.option("--identity", help="Every certificate of a SPIFFE ID so far.")
@click.option("--user", help="Every certificate of a user so far.")
@click.option("--node", help="Every certificate of a node so far.")
@click.option("--reason", default="", help="Recorded with the revocation.")
@registry_option
@click.pass_context
def revoke(
    ctx: click.Context,
    serial: str | None,
    identity: str | None,
    user: str | None,
    node: str | None,
    reason: str,
    registry: str | None,
) -> None:
    """Revoke a certificate or an identity; every server refuses it within seconds."""
    state = state_of(ctx)
    given = [x for x in (serial, identity, user, node) if x]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --serial, --identity, --user, --node")

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            if serial:
                request = pb.RevokeRequest(serial=serial, reason=reason)
            else:
                target = identity or ""
                if user or node:
                    me = await client.whoami()
                    domain = SpiffeId.parse(me.identity).trust_domain
                    target = str(
                        SpiffeId.user(domain, user) if user else SpiffeId.node(domain, node or "")
                    )
                request = pb.RevokeRequest(identity=target, reason=reason)
            response = await client.call("Revoke", request)
        state.note(f"revoked (auth state generation {response.generation})")
        return exit_codes.OK

    execute(ctx, body)


@pki.command("revocations")
@registry_option
@json_option
@click.pass_context
def revocations(ctx: click.Context, registry: str | None) -> None:
    """List revoked certificates (until they expire) and revoked identities."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            response = await client.call("ListRevocations", pb.ListRevocationsRequest())
        if state.settings.json:
            for r in response.revocations:
                state.emit(record(r))
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("SERIAL", "IDENTITY", "REVOKED", "REASON"):
            table.add_column(column, overflow="fold")
        for r in response.revocations:
            table.add_row(r.serial or "(all)", r.identity, timestamp(r.revoke_time), r.reason)
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@pki.command("badge")
@click.option("--kind", type=click.Choice(sorted(BADGE_KINDS)), required=True)
@click.option("--node", "node_id", required=True, metavar="NODE_ID")
@click.option("--flow", default="", help="The flow (required for certified-flow).")
@click.option("--window", type=float, metavar="SECONDS", help="service-level window (7 days).")
@click.option("--ttl", type=float, metavar="SECONDS", help="Badge lifetime (30 days).")
@registry_option
@json_option
@click.pass_context
def badge(
    ctx: click.Context,
    kind: str,
    node_id: str,
    flow: str,
    window: float | None,
    ttl: float | None,
    registry: str | None,
) -> None:
    """Issue a signed badge about a flow or node (verify it with `koco verify`)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.IssueBadgeRequest(kind=BADGE_KINDS[kind], node_id=node_id, flow=flow)
        if (d := duration(ttl)) is not None:
            request.ttl.CopyFrom(d)
        if (w := duration(window)) is not None:
            request.window.CopyFrom(w)
        async with auth_client(state, registry) as client:
            response = await client.call("IssueBadge", request)
        if state.settings.json:
            state.emit(record(response.badge))
        else:
            state.note(f"{kind} badge for {response.badge.subject}")
            click.echo(response.badge.token)
        return exit_codes.OK

    execute(ctx, body)
