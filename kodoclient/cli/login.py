"""`koco login TOKEN`: enroll this person with a one-time token from an admin.

A fresh key is made here and never leaves `<state>/identity/`; the auth provider signs its
CSR. From then on every command uses that identity (renewed before it expires).
"""

from __future__ import annotations

from pathlib import Path

import click

from kodoclient.auth import AuthClient, RegistryTarget
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.errors import ConfigError, KodoclientError
from kodoclient.identity import save_login
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
@json_option
@click.pass_context
def login(ctx: click.Context, token: str, trust_ca: Path | None) -> None:
    """Enroll with TOKEN (from `koco user add` or `koco user token`)."""
    state = state_of(ctx)
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
        if state.settings.json:
            state.emit(
                {"identity": me.identity, "roles": list(me.roles), "groups": list(me.groups)}
            )
        else:
            state.out.print(
                f"logged in as {me.identity} (roles: {', '.join(me.roles)}; groups: "
                f"{', '.join(me.groups) or '-'})",
                highlight=False,
            )
            state.note(f"credentials in {profile.files.cert.parent}")
        return exit_codes.OK

    execute(ctx, body)
