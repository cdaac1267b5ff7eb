"""`koco login TOKEN`: enroll this person with a one-time token from an admin.

A fresh key is made here and never leaves `<state>/identity/`; the auth provider signs its
CSR. From then on every command uses that identity (renewed before it expires), and goes
to the default node chosen here (`--node`, else the first online node the registry lists).
"""

from __future__ import annotations

from pathlib import Path

import click

from kodoclient.auth import AuthClient, RegistryTarget
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.default_node import pick_node
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.errors import ConfigError, KodoclientError
from kodoclient.identity import save_login, set_default_node
from kodoclient.registry import RegistryClient
from kodosumi.enrollment import EnrollmentError, EnrollmentToken, enroll
from kodosumi.spiffe import IdentityKind


@click.command("login")
@click.argument("token")
@click.option(
    "--trust-ca",
    "trust_ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The CA certificate, instead of taking it from the server (it must match the token).",
)
@click.option(
    "--node",
    "node",
    metavar="NODE",
    help="Your default node: a node id the registry knows, or HOST:PORT. Default: the "
    "global --node, else the first online node in the registry's list.",
)
@json_option
@click.pass_context
def login(ctx: click.Context, token: str, trust_ca: Path | None, node: str | None) -> None:
    """Enroll with TOKEN (from `koco user add` or `koco user token`) and choose the node
    your commands go to (switch later with `koco nodes use NODE`)."""
    state = state_of(ctx)
    state.talks_to = "registry"
    ca_pem = trust_ca.read_bytes() if trust_ca else None

    async def body() -> ExitCode:
        try:
            parsed = EnrollmentToken.decode(token)
            if parsed.spiffe_id.kind is not IdentityKind.USER:
                raise EnrollmentError(f"the token enrolls {parsed.identity}, not a person")
            enrolled = await enroll(parsed, ca_pem=ca_pem)
        except EnrollmentError as e:
            if e.code is None:
                raise ConfigError(str(e), reason="ENROLLMENT_FAILED") from None
            raise KodoclientError(e.code, str(e), reason="ENROLLMENT_FAILED") from None
        profile = save_login(state.settings.state, enrolled)
        target = RegistryTarget(profile.registry_address, enrolled.material, state.settings.timeout)
        async with AuthClient(target) as client:
            me = await client.whoami()
        wanted = node or state.settings.node
        try:
            async with RegistryClient(target) as registry:
                chosen = await pick_node(registry, wanted)
        except KodoclientError as e:
            if wanted:
                raise
            # Logged in all the same; the node can be chosen once the registry answers.
            state.note(f"could not list the registry's nodes: {e}")
            chosen = None
        if chosen is not None:
            set_default_node(state.settings.state, *chosen)
        if state.settings.json:
            state.emit(
                {
                    "identity": me.identity,
                    "roles": list(me.roles),
                    "groups": list(me.groups),
                    "node_id": chosen[0] if chosen else "",
                    "node_address": chosen[1] if chosen else "",
                }
            )
        else:
            state.out.print(
                f"logged in as {me.identity} (roles: {', '.join(me.roles)}; groups: "
                f"{', '.join(me.groups) or '-'})",
                highlight=False,
            )
            state.note(f"credentials in {profile.files.cert.parent}")
            if chosen is None:
                state.note("no node is online yet: choose one later with `koco nodes use NODE`")
            else:
                node_id, address = chosen
                state.note(
                    f"default node: {f'{node_id} ({address})' if node_id else address} "
                    "(switch with `koco nodes use NODE`)"
                )
        return exit_codes.OK

    execute(ctx, body)
